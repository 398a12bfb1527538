// Table tests for the bench's pure output helpers.

package main

import (
	"testing"
	"time"
)

func TestOutputHelpers(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{us(1500 * time.Microsecond), "1500 µs"},
		{us(400 * time.Nanosecond), "0 µs"},
		{signed(25 * time.Microsecond), "+25 µs"},
		{signed(-7 * time.Microsecond), "-7 µs"},
		{firstLine([]byte("\n  Docker version 27\nmore\n")), "Docker version 27"},
		{firstLine(nil), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 3}, // the upper median
	} {
		in := append([]float64(nil), tc.xs...)
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.xs[i] {
				t.Errorf("median sorted its input: %v", tc.xs)
			}
		}
	}
}
