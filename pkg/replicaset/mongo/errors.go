package mongo

import (
	"errors"
	"fmt"

	mongodrv "go.mongodb.org/mongo-driver/v2/mongo"
)

// mongod error codes the engine acts on (src/mongo/base/error_codes.yml).
const (
	codeAlreadyInitialized           = 23
	codeMaxTimeMSExpired             = 50
	codeNodeNotFound                 = 74
	codeInvalidReplicaSetConfig      = 93
	codeNotYetInitialized            = 94
	codeIncompatibleConfig           = 103
	codeConfigurationInProgress      = 109
	codeExceededTimeLimit            = 262
	codeCurrentConfigNotCommittedYet = 308
	codeNotWritablePrimary           = 10107
	codeNotPrimaryNoSecondaryOk      = 13435
)

// Errors a Reconcile step can end in, checked with errors.Is.
var (
	ErrNotInitialized   = errors.New("mongo: replica set not initialized")
	ErrNotPrimary       = errors.New("mongo: member is not primary")
	ErrConfigInProgress = errors.New("mongo: member is installing a config")
	ErrNotCommitted     = errors.New("mongo: config not yet committed by a majority")
	ErrInvalidConfig    = errors.New("mongo: replica set config rejected as invalid")
	ErrIncompatible     = errors.New("mongo: replica set config incompatible with the current one")
	ErrNoElectable      = errors.New("mongo: no electable secondary to step down to")
	ErrUnreachable      = errors.New("mongo: member unreachable")
)

// classify wraps a driver error with the engine's sentinel for its server code; transient
// reports whether the next Reconcile is expected to get past it without anyone's help.
func classify(err error) (wrapped error, transient bool) {
	if err == nil {
		return nil, false
	}
	var ce mongodrv.CommandError
	if !errors.As(err, &ce) {
		return fmt.Errorf("%w: %w", ErrUnreachable, err), true
	}
	switch ce.Code {
	case codeNotYetInitialized:
		return fmt.Errorf("%w: %w", ErrNotInitialized, err), true
	case codeNotWritablePrimary, codeNotPrimaryNoSecondaryOk:
		return fmt.Errorf("%w: %w", ErrNotPrimary, err), true
	case codeConfigurationInProgress:
		return fmt.Errorf("%w: %w", ErrConfigInProgress, err), true
	case codeCurrentConfigNotCommittedYet, codeMaxTimeMSExpired:
		return fmt.Errorf("%w: %w", ErrNotCommitted, err), true
	case codeInvalidReplicaSetConfig, codeNodeNotFound:
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err), false
	case codeIncompatibleConfig:
		return fmt.Errorf("%w: %w", ErrIncompatible, err), false
	case codeExceededTimeLimit:
		return fmt.Errorf("%w: %w", ErrNoElectable, err), true
	}
	return err, false
}

func serverCode(err error) int32 {
	var ce mongodrv.CommandError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}
