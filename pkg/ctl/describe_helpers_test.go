package ctl

import (
	"io"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// describe is describeWith without breaker views (the tests' shorthand).
func describe(w io.Writer, obj v1.Object, services []v1.Object, now time.Time) error {
	return describeWith(w, obj, services, nil, now)
}
