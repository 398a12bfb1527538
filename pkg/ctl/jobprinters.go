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
