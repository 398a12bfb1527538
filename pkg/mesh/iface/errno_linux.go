package iface

import "syscall"

// errExist is what netlink answers for an address that is already there (a race with another
// Sync, or an operator): not an error for Sync.
var errExist = syscall.EEXIST
