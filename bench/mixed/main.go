// The mixed scenario of make bench (issue 12): pairs of a client and a
// provider run whole request lifecycles against one nginx for a fixed
// time: the provider reports its position, the client asks for a job,
// the provider accepts it (with -pay, the client pays it by card: the
// payment worker holds the amount at Stripe, and captures it once the
// job is completed), they chat, the provider starts, moves and
// completes it, the client reads the result.  Prints one JSON object:
// lifecycles completed, and per endpoint the count, errors and latency
// percentiles.  Standard library only.
//
//	mixed -base http://127.0.0.1:8080 -pairs pairs.json -seconds 60 [-pay]
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type pair struct {
	Category string  `json:"category"`
	Client   string  `json:"client_token"`
	Provider string  `json:"provider_token"`
	Lat      float64 `json:"lat"`
	Lng      float64 `json:"lng"`
}

type stat struct {
	mu     sync.Mutex
	lat    []float64
	errors int
	codes  map[int]int
}

type recorder struct {
	mu    sync.Mutex
	stats map[string]*stat
}

func (r *recorder) add(name string, ms float64, code int, ok bool) {
	r.mu.Lock()
	s := r.stats[name]
	if s == nil {
		s = &stat{codes: map[int]int{}}
		r.stats[name] = s
	}
	r.mu.Unlock()
	s.mu.Lock()
	s.lat = append(s.lat, ms)
	s.codes[code]++
	if !ok {
		s.errors++
	}
	s.mu.Unlock()
}

type sim struct {
	base   string
	client *http.Client
	rec    *recorder
	stop   time.Time
	pay    bool
}

// call sends one request and records it under name; want is the
// expected status.
func (s *sim) call(name, method, path, token string, body any,
	want int) (map[string]any, bool) {
	return s.callWith(name, method, path, token, nil, body, want)
}

// callWith is call with headers of its own.
func (s *sim) callWith(name, method, path, token string,
	hdr map[string]string, body any, want int) (map[string]any, bool) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := s.client.Do(req)
	ms := float64(time.Since(t0).Microseconds()) / 1000
	if err != nil {
		s.rec.add(name, ms, 0, false)
		return nil, false
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ok := resp.StatusCode == want
	s.rec.add(name, ms, resp.StatusCode, ok)
	if !ok {
		return nil, false
	}
	var out map[string]any
	if len(data) > 0 {
		_ = json.Unmarshal(data, &out)
	}
	return out, true
}

func (s *sim) locate(p pair, step int) {
	// at most one position a second per provider is taken
	time.Sleep(1100 * time.Millisecond)
	s.call("PUT /v1/providers/me/location", "PUT",
		"/v1/providers/me/location", p.Provider,
		map[string]float64{"lat": p.Lat + float64(step)*0.0005,
			"lng": p.Lng}, 204)
}

// lifecycle runs one request from creation to completion; true when
// every step answered as it should.
func (s *sim) lifecycle(p pair, n int) bool {
	req, ok := s.call("POST /v1/requests", "POST", "/v1/requests",
		p.Client, map[string]any{
			"category":    p.Category,
			"description": "Two rooms and a kitchen",
			"location": map[string]float64{
				"lat": p.Lat + 0.01, "lng": p.Lng + 0.01},
			"budget": map[string]any{"amount": 15000,
				"currency": "BRL"}}, 201)
	if !ok {
		return false
	}
	id, _ := req["id"].(string)
	r := "/v1/requests/" + id
	steps := []func() bool{
		func() bool {
			_, ok := s.call("GET /v1/requests/{id}/matches", "GET",
				r+"/matches", p.Client, nil, 200)
			return ok
		},
		func() bool {
			_, ok := s.call("POST /v1/requests/{id}/accept", "POST",
				r+"/accept", p.Provider, nil, 200)
			return ok
		},
		func() bool {
			if !s.pay {
				return true
			}
			_, ok := s.callWith("POST /v1/requests/{id}/payments", "POST",
				r+"/payments", p.Client,
				map[string]string{"Idempotency-Key": "pay-" + id},
				map[string]string{"method": "stripe"}, 202)
			return ok
		},
		func() bool { return s.chat(p, r, n) },
		func() bool {
			_, ok := s.call("POST /v1/requests/{id}/start", "POST",
				r+"/start", p.Provider, nil, 200)
			return ok
		},
		func() bool { s.locate(p, 1); return true },
		func() bool {
			_, ok := s.call("POST /v1/requests/{id}/complete", "POST",
				r+"/complete", p.Provider, nil, 200)
			return ok
		},
		func() bool {
			doc, ok := s.call("GET /v1/requests/{id}", "GET", r,
				p.Client, nil, 200)
			return ok && doc["status"] == "completed"
		},
	}
	for _, step := range steps {
		if !step() {
			return false
		}
	}
	return true
}

func (s *sim) chat(p pair, r string, n int) bool {
	for i, who := range []string{p.Client, p.Provider, p.Client} {
		_, ok := s.call("POST /v1/requests/{id}/messages", "POST",
			r+"/messages", who, map[string]string{
				"text":          fmt.Sprintf("message %d of job %d", i, n),
				"client_msg_id": fmt.Sprintf("m-%d-%d-%d", n, i, rand.Int63()),
			}, 201)
		if !ok {
			return false
		}
	}
	_, ok := s.call("GET /v1/requests/{id}/messages", "GET",
		r+"/messages?limit=20", p.Provider, nil, 200)
	return ok
}

func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	i := int(q * float64(len(v)-1))
	return v[i]
}

func main() {
	base := flag.String("base", "http://127.0.0.1:8080", "nginx")
	file := flag.String("pairs", "pairs.json", "clients and providers")
	seconds := flag.Int("seconds", 60, "how long")
	pay := flag.Bool("pay", false, "pay each job by card once accepted")
	flag.Parse()

	var pairs []pair
	data, err := os.ReadFile(*file)
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(data, &pairs); err != nil {
		panic(err)
	}

	tr := &http.Transport{MaxIdleConnsPerHost: len(pairs) * 2,
		MaxIdleConns: len(pairs) * 2, IdleConnTimeout: time.Minute}
	s := &sim{base: *base, rec: &recorder{stats: map[string]*stat{}},
		client: &http.Client{Transport: tr, Timeout: 120 * time.Second},
		stop:   time.Now().Add(time.Duration(*seconds) * time.Second),
		pay:    *pay}

	var done, failed int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, p := range pairs {
		wg.Add(1)
		go func(i int, p pair) {
			defer wg.Done()
			// the pairs start spread over a second
			time.Sleep(time.Duration(i) * time.Second / time.Duration(len(pairs)))
			// a sign of life first: matching takes providers seen lately
			s.call("PUT /v1/providers/me/location", "PUT",
				"/v1/providers/me/location", p.Provider,
				map[string]float64{"lat": p.Lat, "lng": p.Lng}, 204)
			s.call("PUT /v1/providers/me/status", "PUT",
				"/v1/providers/me/status", p.Provider,
				map[string]bool{"online": true}, 200)
			for n := 0; time.Now().Before(s.stop); n++ {
				if s.lifecycle(p, i*100000+n) {
					atomic.AddInt64(&done, 1)
				} else {
					atomic.AddInt64(&failed, 1)
					time.Sleep(200 * time.Millisecond)
				}
			}
		}(i, p)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	type row struct {
		Count  int         `json:"count"`
		Errors int         `json:"errors"`
		Codes  map[int]int `json:"codes"`
		P50    float64     `json:"p50_ms"`
		P99    float64     `json:"p99_ms"`
		Max    float64     `json:"max_ms"`
	}
	out := map[string]any{"pairs": len(pairs), "seconds": elapsed,
		"lifecycles": done, "failed": failed}
	endpoints := map[string]row{}
	for name, st := range s.rec.stats {
		sort.Float64s(st.lat)
		endpoints[name] = row{Count: len(st.lat), Errors: st.errors,
			Codes: st.codes, P50: pct(st.lat, 0.50),
			P99: pct(st.lat, 0.99), Max: pct(st.lat, 1)}
	}
	out["endpoints"] = endpoints
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
