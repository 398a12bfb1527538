// Command errors as mongod writes them, with mongod's codes and names.

package mongo

import (
	"fmt"
)

// cmdError is a command failure as mongod writes it: {ok: 0, errmsg, code, codeName}.
type cmdError struct {
	Code int32
	Name string
	Msg  string
}

func (e *cmdError) Error() string { return fmt.Sprintf("(%s) %s", e.Name, e.Msg) }

// Error codes from mongod's src/mongo/base/error_codes.yml.
const (
	CodeUnauthorized                           = 13
	CodeAlreadyInitialized                     = 23
	CodeMaxTimeMSExpired                       = 50
	CodeCommandNotFound                        = 59
	CodeNodeNotFound                           = 74
	CodeInvalidReplicaSetConfig                = 93
	CodeNotYetInitialized                      = 94
	CodeNewReplicaSetConfigurationIncompatible = 103
	CodeConfigurationInProgress                = 109
	CodeExceededTimeLimit                      = 262
	CodeCurrentConfigNotCommittedYet           = 308
	CodeNotWritablePrimary                     = 10107
)

func errf(code int32, name, format string, a ...any) *cmdError {
	return &cmdError{Code: code, Name: name, Msg: fmt.Sprintf(format, a...)}
}

func errInvalidConfig(format string, a ...any) *cmdError {
	return errf(CodeInvalidReplicaSetConfig, "InvalidReplicaSetConfig", format, a...)
}

func errIncompatible(format string, a ...any) *cmdError {
	return errf(CodeNewReplicaSetConfigurationIncompatible, "NewReplicaSetConfigurationIncompatible", format, a...)
}

// mongod's checkReplEnabledForCommand before any config exists.
var errNotYetInitialized = &cmdError{CodeNotYetInitialized, "NotYetInitialized", "no replset config has been received"}
