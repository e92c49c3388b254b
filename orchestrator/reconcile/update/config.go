package update

// This file owns choosing the UpdateConfig an update runs with and turning
// it into plain values, defaults applied.

import (
	"time"

	"github.com/shoal/shoal/api"
)

// DefaultMonitor is how long a new task is watched for failure when the
// update config sets no monitor.
const DefaultMonitor = 5 * time.Second

// config is an UpdateConfig with its defaults applied.
type config struct {
	// parallelism is the group size; 0 means every slot in one group.
	parallelism     int
	delay           time.Duration
	failureAction   api.UpdateConfig_FailureAction
	monitor         time.Duration
	maxFailureRatio float32
	startFirst      bool
}

// defaultConfig is what a service with neither an update nor a rollback
// config gets.
var defaultConfig = config{
	parallelism:   1,
	failureAction: api.UpdateConfig_FAILURE_ACTION_PAUSE,
	monitor:       DefaultMonitor,
}

// configFor picks spec.rollback while rolling back, else spec.update, and
// applies the defaults.
func configFor(spec *api.ServiceSpec, rollingBack bool) config {
	uc := spec.GetUpdate()
	if rollingBack && spec.GetRollback() != nil {
		uc = spec.GetRollback()
	}
	if uc == nil {
		return defaultConfig
	}
	c := config{
		parallelism:     int(uc.GetParallelism()),
		delay:           max(uc.GetDelay().AsDuration(), 0),
		failureAction:   uc.GetFailureAction(),
		monitor:         DefaultMonitor,
		maxFailureRatio: uc.GetMaxFailureRatio(),
		startFirst:      uc.GetOrder() == api.UpdateConfig_ORDER_START_FIRST,
	}
	if uc.GetMonitor() != nil {
		c.monitor = max(uc.GetMonitor().AsDuration(), 0)
	}
	return c
}
