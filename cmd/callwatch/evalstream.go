package main

import (
	"math"
	"sort"

	"github.com/callwatch/callwatch"
)

type streamCall struct {
	phishing bool
	segs     []callwatch.Segment
}

type latency struct {
	MedianS     *float64 `json:"median_s"`
	P90S        *float64 `json:"p90_s"`
	NeverShare  float64  `json:"never_share"`
	Alerted     int      `json:"alerted"`
	MedianShare *float64 `json:"median_share_of_call,omitempty"`
}

type streamReport struct {
	SpeechRate float64 `json:"speech_rate_syllables_per_s"`
	Segments   int     `json:"segments"`
	Phishing   struct {
		N              int     `json:"n"`
		FirstSuspicous latency `json:"first_suspicious"`
		FirstDangerous latency `json:"first_dangerous"`
	} `json:"phishing"`
	Normal struct {
		N               int     `json:"n"`
		EverSuspicious  float64 `json:"ever_suspicious_share"`
		EverDangerous   float64 `json:"ever_dangerous_share"`
		EndedSuspicious float64 `json:"ended_at_suspicious_or_above_share"`
	} `json:"normal"`
	Policy callwatch.Policy `json:"policy"`
}

// evalStream feeds each call segment by segment through sessions, many calls
// per backend batch, and records when each level was first reached.
func evalStream(e *env, d *callwatch.Detector, pol callwatch.Policy, calls []streamCall, batch int) (*streamReport, error) {
	rep := &streamReport{SpeechRate: callwatch.SpeechRate, Policy: pol}
	var suspT, dangT, suspFrac, dangFrac []float64
	everS, everD, endS := 0, 0, 0
	for start := 0; start < len(calls); start += batch {
		group := calls[start:min(start+batch, len(calls))]
		sess := make([]*callwatch.Session, len(group))
		first := make([][2]float64, len(group)) // first suspicious, dangerous time; -1 = never
		for i := range group {
			s, err := d.NewSession(pol)
			if err != nil {
				return nil, err
			}
			sess[i] = s
			first[i] = [2]float64{-1, -1}
		}
		for k := 0; ; k++ {
			var ss []*callwatch.Session
			var segs []callwatch.Segment
			var idx []int
			for i, c := range group {
				if k < len(c.segs) {
					ss, segs, idx = append(ss, sess[i]), append(segs, c.segs[k]), append(idx, i)
				}
			}
			if len(ss) == 0 {
				break
			}
			ups, err := d.FeedBatch(e.ctx, ss, segs)
			if err != nil {
				return nil, err
			}
			rep.Segments += len(ups)
			for j, u := range ups {
				i := idx[j]
				r := u.Level.Rank()
				if r >= callwatch.LevelSuspicious.Rank() && first[i][0] < 0 {
					first[i][0] = segs[j].End
				}
				if r >= callwatch.LevelDangerous.Rank() && first[i][1] < 0 {
					first[i][1] = segs[j].End
				}
			}
		}
		for i, c := range group {
			dur := 0.0
			if n := len(c.segs); n > 0 {
				dur = c.segs[n-1].End
			}
			if c.phishing {
				rep.Phishing.N++
				if first[i][0] >= 0 {
					suspT = append(suspT, first[i][0])
					if dur > 0 {
						suspFrac = append(suspFrac, first[i][0]/dur)
					}
				}
				if first[i][1] >= 0 {
					dangT = append(dangT, first[i][1])
					if dur > 0 {
						dangFrac = append(dangFrac, first[i][1]/dur)
					}
				}
			} else {
				rep.Normal.N++
				if first[i][0] >= 0 {
					everS++
				}
				if first[i][1] >= 0 {
					everD++
				}
				if sess[i].Level().Rank() >= callwatch.LevelSuspicious.Rank() {
					endS++
				}
			}
		}
	}
	rep.Phishing.FirstSuspicous = summarize(suspT, suspFrac, rep.Phishing.N)
	rep.Phishing.FirstDangerous = summarize(dangT, dangFrac, rep.Phishing.N)
	if n := float64(rep.Normal.N); n > 0 {
		rep.Normal.EverSuspicious = math.Round(float64(everS)/n*1e4) / 1e4
		rep.Normal.EverDangerous = math.Round(float64(everD)/n*1e4) / 1e4
		rep.Normal.EndedSuspicious = math.Round(float64(endS)/n*1e4) / 1e4
	}
	return rep, nil
}

func summarize(ts, fracs []float64, n int) latency {
	l := latency{Alerted: len(ts)}
	if n > 0 {
		l.NeverShare = math.Round((1-float64(len(ts))/float64(n))*1e4) / 1e4
	}
	if len(ts) > 0 {
		sort.Float64s(ts)
		m, p := quantile(ts, 0.5), quantile(ts, 0.9)
		l.MedianS, l.P90S = &m, &p
	}
	if len(fracs) > 0 {
		sort.Float64s(fracs)
		f := quantile(fracs, 0.5)
		l.MedianShare = &f
	}
	return l
}

// quantile of sorted xs by linear interpolation.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 1 {
		return xs[0]
	}
	pos := q * float64(len(xs)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(xs)-1)
	v := xs[lo] + (xs[hi]-xs[lo])*(pos-float64(lo))
	return math.Round(v*100) / 100
}
