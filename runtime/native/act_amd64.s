//go:build !purego

#include "textflag.h"

// Cephes expf constants (float32 bit patterns).
DATA expc<>+0(SB)/4, $0x3fb8aa3b  // log2(e)
DATA expc<>+4(SB)/4, $0x3f000000  // 0.5
DATA expc<>+8(SB)/4, $0x3f800000  // 1
DATA expc<>+12(SB)/4, $0x3f318000 // ln2 high part
DATA expc<>+16(SB)/4, $0xb95e8083 // ln2 low part
DATA expc<>+20(SB)/4, $0x39506967 // p0
DATA expc<>+24(SB)/4, $0x3ab743ce // p1
DATA expc<>+28(SB)/4, $0x3c088908 // p2
DATA expc<>+32(SB)/4, $0x3d2aa9c1 // p3
DATA expc<>+36(SB)/4, $0x3e2aaaaa // p4
DATA expc<>+40(SB)/4, $0x3f000000 // p5
DATA expc<>+44(SB)/4, $0x42b0c0a5 // 88.376: exp overflows above
DATA expc<>+48(SB)/4, $0xc2aeac50 // -87.337: keeps 2^n normal
DATA expc<>+52(SB)/4, $127        // exponent bias (int32)
GLOBL expc<>(SB), RODATA|NOPTR, $56

// func actAVX2(dst, src *float32, n int, m, a, b float32)
// dst[i] = a/(1+exp(m*src[i])) + b for i < n; n must be a multiple of 8.
// (m,a,b) = (-1,1,0) is the logistic sigmoid, (-2,2,-1) is tanh.
TEXT ·actAVX2(SB), NOSPLIT, $0-36
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	VBROADCASTSS m+24(FP), Y8
	VBROADCASTSS a+28(FP), Y9
	VBROADCASTSS b+32(FP), Y10
	VBROADCASTSS expc<>+8(SB), Y11
	VBROADCASTSS expc<>+44(SB), Y12
	VBROADCASTSS expc<>+48(SB), Y13
	VBROADCASTSS expc<>+0(SB), Y14
	VBROADCASTSS expc<>+4(SB), Y15

loop:
	CMPQ CX, $8
	JLT  done
	VMOVUPS (SI), Y0
	VMULPS  Y8, Y0, Y0
	VMINPS  Y12, Y0, Y0
	VMAXPS  Y13, Y0, Y0

	// fx = floor(x*log2e + 0.5); x -= fx*ln2 (two parts)
	VMOVAPS      Y15, Y1
	VFMADD231PS  Y14, Y0, Y1
	VROUNDPS     $1, Y1, Y1
	VBROADCASTSS expc<>+12(SB), Y5
	VBROADCASTSS expc<>+16(SB), Y6
	VFNMADD231PS Y5, Y1, Y0
	VFNMADD231PS Y6, Y1, Y0
	VMULPS       Y0, Y0, Y2

	// y = ((((p0*x+p1)*x+p2)*x+p3)*x+p4)*x+p5; y = y*z + x + 1
	VBROADCASTSS expc<>+20(SB), Y3
	VBROADCASTSS expc<>+24(SB), Y4
	VFMADD213PS  Y4, Y0, Y3
	VBROADCASTSS expc<>+28(SB), Y4
	VFMADD213PS  Y4, Y0, Y3
	VBROADCASTSS expc<>+32(SB), Y4
	VFMADD213PS  Y4, Y0, Y3
	VBROADCASTSS expc<>+36(SB), Y4
	VFMADD213PS  Y4, Y0, Y3
	VBROADCASTSS expc<>+40(SB), Y4
	VFMADD213PS  Y4, Y0, Y3
	VFMADD213PS  Y0, Y2, Y3
	VADDPS       Y11, Y3, Y3

	// scale by 2^fx
	VCVTTPS2DQ   Y1, Y1
	VPBROADCASTD expc<>+52(SB), Y7
	VPADDD       Y7, Y1, Y1
	VPSLLD       $23, Y1, Y1
	VMULPS       Y1, Y3, Y3

	// a/(1+e) + b
	VADDPS  Y11, Y3, Y3
	VDIVPS  Y3, Y9, Y3
	VADDPS  Y10, Y3, Y3
	VMOVUPS Y3, (DI)

	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  loop

done:
	VZEROUPPER
	RET
