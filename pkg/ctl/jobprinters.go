package ctl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/constellation-sh/constellation/api/v1"
)

// Tables of Configs, Jobs and CronJobs (`ctl get configs|jobs|cronjobs`).
func init() {
	printers[v1.KindConfig] = printer{configHeader, configRow}
	printers[v1.KindJob] = printer{jobHeader, jobRow}
	printers[v1.KindCronJob] = printer{cronJobHeader, cronJobRow}
}

func configHeader(bool) []string { return []string{"NAME", "KEYS", "BYTES", "AGE"} }

func configRow(o v1.Object, _ bool, now time.Time) []string {
	c := o.(*v1.Config)
	keys := c.Spec.Keys()
	sort.Strings(keys)
	size := 0
	for _, k := range keys {
		v, _ := c.Spec.Value(k)
		size += len(v)
	}
	return []string{c.Metadata.Name, joinOrNone(keys), strconv.Itoa(size), age(now, c.Metadata.CreationTimestamp)}
}

func jobHeader(wide bool) []string {
	h := []string{"NAME", "STATUS", "NODE", "ATTEMPTS", "EXIT", "DURATION"}
	if wide {
		h = append(h, "IMAGE", "MESSAGE")
	}
	return append(h, "AGE")
}

func jobRow(o v1.Object, wide bool, now time.Time) []string {
	j := o.(*v1.Job)
	st := j.Status
	phase := string(st.Phase)
	if phase == "" {
		phase = string(v1.JobPending)
	}
	exit := "<none>"
	if st.ExitCode != nil {
		exit = strconv.Itoa(int(*st.ExitCode))
	}
	dur := "<none>"
	if st.StartTime != nil {
		end := now
		if st.CompletionTime != nil {
			end = *st.CompletionTime
		}
		dur = humanDuration(end.Sub(*st.StartTime))
	}
	attempts := strconv.Itoa(int(st.Attempts))
	if j.Spec.BackoffLimit != nil {
		attempts += "/" + strconv.Itoa(int(*j.Spec.BackoffLimit)+1)
	}
	row := []string{j.Metadata.Name, phase, none(st.Node), attempts, exit, dur}
	if wide {
		msg := strings.ReplaceAll(st.Message, "\n", " ")
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		row = append(row, j.Spec.Image, none(msg))
	}
	return append(row, age(now, j.Metadata.CreationTimestamp))
}

func cronJobHeader(wide bool) []string {
	h := []string{"NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST-SCHEDULE"}
	if wide {
		h = append(h, "POLICY", "IMAGE")
	}
	return append(h, "AGE")
}

func cronJobRow(o v1.Object, wide bool, now time.Time) []string {
	c := o.(*v1.CronJob)
	last := "<none>"
	if t := c.Status.LastScheduleTime; t != nil {
		last = age(now, t) + " ago"
	}
	tz := c.Spec.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	row := []string{c.Metadata.Name, c.Spec.Schedule, tz, fmt.Sprint(c.Spec.Suspend), strconv.Itoa(len(c.Status.Active)), last}
	if wide {
		policy := string(c.Spec.ConcurrencyPolicy)
		if policy == "" {
			policy = string(v1.ConcurrencyAllow)
		}
		row = append(row, policy, c.Spec.JobTemplate.Image)
	}
	return append(row, age(now, c.Metadata.CreationTimestamp))
}

// jobKinds describes a Config (keys and sizes), a Job or a CronJob.
func (d *describer) jobKinds(o v1.Object) {
	switch o := o.(type) {
	case *v1.Config:
		keys := o.Spec.Keys()
		sort.Strings(keys)
		d.line(0, "Keys", "%s", joinOrNone(keys))
		for _, k := range keys {
			v, _ := o.Spec.Value(k)
			d.line(1, k, "%d bytes", len(v))
		}
	case *v1.Job:
		d.line(0, "Image", "%s", o.Spec.Image)
		if o.Spec.BackoffLimit != nil {
			d.line(0, "Backoff limit", "%d", *o.Spec.BackoffLimit)
		}
		if o.Spec.ActiveDeadline != nil {
			d.line(0, "Active deadline", "%s", o.Spec.ActiveDeadline.Duration)
		}
		st := o.Status
		d.line(0, "Phase", "%s", none(string(st.Phase)))
		d.line(0, "Node", "%s", none(st.Node))
		d.line(0, "Attempts", "%d", st.Attempts)
		if st.ExitCode != nil {
			d.line(0, "Exit code", "%d", *st.ExitCode)
		}
		d.line(0, "Started", "%s", d.when(st.StartTime))
		d.line(0, "Completed", "%s", d.when(st.CompletionTime))
		d.line(0, "Message", "%s", none(st.Message))
	case *v1.CronJob:
		d.line(0, "Schedule", "%s", o.Spec.Schedule)
		tz := o.Spec.TimeZone
		if tz == "" {
			tz = "UTC"
		}
		d.line(0, "Time zone", "%s", tz)
		d.line(0, "Concurrency", "%s", none(string(o.Spec.ConcurrencyPolicy)))
		d.line(0, "Suspend", "%v", o.Spec.Suspend)
		d.line(0, "Image", "%s", o.Spec.JobTemplate.Image)
		d.line(0, "Active", "%s", joinOrNone(o.Status.Active))
		d.line(0, "Last schedule", "%s", d.when(o.Status.LastScheduleTime))
		d.line(0, "Last success", "%s", d.when(o.Status.LastSuccessfulTime))
	}
}
