module github.com/callwatch/callwatch

go 1.26.8
