// Package auth holds the API's credentials: named bearer tokens, each with a scope (admin, read,
// provider), read from a file the agent re-reads when it changes or on SIGHUP, and the rules of
// what each scope may call. The cluster's peer secret is not an API credential: it is checked by
// the peer endpoints themselves and never accepted here.
package auth
