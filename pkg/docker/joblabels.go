package docker

// Labels of Job containers (controllers/job, docs/jobs.md). A Job container carries
// LabelJob, LabelJobAttempt, LabelNode and LabelSpecHash, and never LabelService: the node
// reconciler, which touches only containers with LabelService, leaves it alone, and the job
// runner touches only containers with LabelJob and its own LabelNode.
const (
	LabelJob        = "constellation.job"
	LabelJobAttempt = "constellation.job-attempt"
)
