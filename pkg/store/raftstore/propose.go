package raftstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"

	v1 "github.com/constellation-sh/constellation/api/v1"
	"github.com/constellation-sh/constellation/pkg/store"
)

// release hands applied entries' outcomes to the proposers waiting on this member.
func (s *Store) release(outcomes []outcome) {
	if len(outcomes) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range outcomes {
		if ch, ok := s.waiters[o.reqID]; ok {
			ch <- o.res // buffered, one result per request id
			delete(s.waiters, o.reqID)
		}
	}
}

// resolveReads hands ReadIndex answers to the reads waiting for them.
func (s *Store) resolveReads(rs []raft.ReadState) {
	if len(rs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if len(r.RequestCtx) != 8 {
			continue
		}
		id := binary.BigEndian.Uint64(r.RequestCtx)
		if ch, ok := s.reads[id]; ok {
			ch <- r.Index
			delete(s.reads, id)
		}
	}
}

// Proposals are a version byte, the request id and the Mutation's JSON.
const proposalV1 = 1

func encodeProposal(reqID uint64, m store.Mutation) ([]byte, error) {
	b := make([]byte, 9, 9+512)
	b[0] = proposalV1
	binary.BigEndian.PutUint64(b[1:9], reqID)
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("raftstore: encode proposal: %w", err)
	}
	return append(b, j...), nil
}

func decodeProposal(b []byte) (uint64, store.Mutation, error) {
	var m store.Mutation
	if len(b) < 9 || b[0] != proposalV1 {
		return 0, m, errors.New("raftstore: malformed proposal")
	}
	id := binary.BigEndian.Uint64(b[1:9])
	if err := json.Unmarshal(b[9:], &m); err != nil {
		return id, m, fmt.Errorf("raftstore: decode proposal: %w", err)
	}
	return id, m, nil
}

func (s *Store) nextReqID() uint64 { return s.reqBase + s.reqSeq.Add(1) }

// withDeadline applies the default request timeout to a context without a deadline.
func (s *Store) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.cfg.RequestTimeout)
}

// unavailable explains why a request did not complete in time.
func (s *Store) unavailable(ctx context.Context, what string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("raftstore: %s: %w", what, ctx.Err())
	}
	s.mu.Lock()
	lead := s.lead
	leader := "none"
	if m, ok := s.members[lead]; ok {
		leader = m.Name
	} else if lead != 0 {
		leader = idString(lead)
	}
	s.mu.Unlock()
	return fmt.Errorf("raftstore: %s: no quorum before the deadline (leader: %s): %w (%w)", what, leader, store.ErrUnavailable, ctx.Err())
}

// usable returns ErrClosed or the loop's failure, if any.
func (s *Store) usable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("raftstore: stopped after a failure: %w (%w)", store.ErrUnavailable, s.failed)
	}
	return nil
}

// proposeAndWait proposes data under reqID and waits until this node applies it.
func (s *Store) proposeAndWait(ctx context.Context, reqID uint64, what string, propose func(context.Context) error) (applyResult, error) {
	if err := s.usable(); err != nil {
		return applyResult{}, err
	}
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	ch := make(chan applyResult, 1)
	s.mu.Lock()
	s.waiters[reqID] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, reqID)
		s.mu.Unlock()
	}()
	s.met.proposals.Inc()
	for {
		err := propose(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrStopped) {
			return applyResult{}, store.ErrClosed
		}
		if !errors.Is(err, raft.ErrProposalDropped) {
			if ctx.Err() != nil {
				return applyResult{}, s.unavailable(ctx, what)
			}
			return applyResult{}, fmt.Errorf("raftstore: %s: %w", what, err)
		}
		// Dropped before reaching any log (no leader, or a leadership transfer): safe to
		// propose again.
		select {
		case <-time.After(s.cfg.TickInterval / 2):
		case <-ctx.Done():
			return applyResult{}, s.unavailable(ctx, what)
		case <-s.done:
			return applyResult{}, store.ErrClosed
		}
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return applyResult{}, s.unavailable(ctx, what)
	case <-s.done:
		return applyResult{}, store.ErrClosed
	}
}

func (s *Store) write(ctx context.Context, mut store.Mutation) (v1.Object, error) {
	reqID := s.nextReqID()
	data, err := encodeProposal(reqID, mut)
	if err != nil {
		return nil, err
	}
	what := fmt.Sprintf("%s %s/%s", mut.Op, mut.Kind, mut.Name)
	r, err := s.proposeAndWait(ctx, reqID, what, func(ctx context.Context) error { return s.node.Propose(ctx, data) })
	if err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	return store.DecodeKind(mut.Kind, r.object)
}

// linearize waits until this node has applied everything committed before the call: a
// ReadIndex round confirms leadership with a quorum, then the local state catches up. Reads
// that follow see every write acknowledged before it started.
func (s *Store) linearize(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return err
	}
	ctx, cancel := s.withDeadline(ctx)
	defer cancel()
	// A ReadIndex is lost silently when there is no leader or it steps down: ask again
	// after an election timeout.
	retry := s.cfg.TickInterval * time.Duration(s.cfg.ElectionTicks)
	for {
		id := s.nextReqID()
		ch := make(chan uint64, 1)
		s.mu.Lock()
		s.reads[id] = ch
		s.mu.Unlock()
		rctx := u64(id)
		err := s.node.ReadIndex(ctx, rctx)
		if err == nil {
			timer := time.NewTimer(retry)
			select {
			case idx := <-ch:
				timer.Stop()
				return s.waitApplied(ctx, idx)
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
			case <-s.done:
				timer.Stop()
			}
		}
		s.mu.Lock()
		delete(s.reads, id)
		s.mu.Unlock()
		switch {
		case errors.Is(err, raft.ErrStopped):
			return store.ErrClosed
		case ctx.Err() != nil:
			return s.unavailable(ctx, "linearizable read")
		}
		if err := s.usable(); err != nil {
			return err
		}
		if err != nil {
			select {
			case <-time.After(s.cfg.TickInterval):
			case <-ctx.Done():
				return s.unavailable(ctx, "linearizable read")
			}
		}
	}
}

func (s *Store) waitApplied(ctx context.Context, idx uint64) error {
	for {
		s.mu.Lock()
		applied, ch, closed := s.applied, s.appliedC, s.closed
		s.mu.Unlock()
		if closed {
			return store.ErrClosed
		}
		if applied >= idx {
			return nil
		}
		select {
		case s.flushc <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return s.unavailable(ctx, "linearizable read")
		case <-s.done:
			return store.ErrClosed
		}
	}
}

func (s *Store) read(ctx context.Context, opts []store.ReadOption) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if store.ApplyReadOptions(opts).Stale {
		if err := s.usable(); err != nil {
			return err
		}
		// What this member applied and announced to watches is read back, even if its bbolt
		// batch is not committed yet (a controller reads what an event told it about): wait
		// for that commit, which the read asks for at once. No quorum is needed.
		s.mu.Lock()
		want := s.appliedTx
		s.mu.Unlock()
		return s.waitApplied(ctx, want)
	}
	return s.linearize(ctx)
}
