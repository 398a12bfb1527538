package raftstore

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/constellation-sh/constellation/pkg/store"
)

// The decoders below parse bytes from peers (frames, hellos, raft messages, snapshots,
// proposals and conf change contexts from the log, join requests and responses). Whatever
// the input, they return an error or a value; they never panic or allocate past the limits.

func FuzzReadFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = writeFrame(&buf, []byte("hello"))
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readFrame(bytes.NewReader(b), maxHelloFrame)
		if err == nil && len(got) > maxHelloFrame {
			t.Fatalf("frame of %d bytes past the limit", len(got))
		}
	})
}

func FuzzDecodeHello(f *testing.F) {
	h, _ := json.Marshal(hello{Version: helloVersion, From: 1, To: 2, Token: "t"})
	f.Add(h)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err == nil && (h.From == 0 || h.Version != helloVersion) {
			t.Fatalf("accepted %+v", h)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	typ, from, to, idx := pb.MsgApp, uint64(1), uint64(2), uint64(7)
	m, _ := proto.Marshal(&pb.Message{Type: &typ, From: &from, To: &to, Index: &idx, Entries: []*pb.Entry{{Data: []byte("x")}}})
	f.Add(m)
	snapT := pb.MsgSnap
	s, _ := proto.Marshal(&pb.Message{Type: &snapT, From: &from, To: &to, Snapshot: &pb.Snapshot{}})
	f.Add(s)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b, 2)
		if err == nil && (m.GetTo() != 2 || m.GetFrom() == 0) {
			t.Fatalf("accepted a message from %d to %d", m.GetFrom(), m.GetTo())
		}
	})
}

func FuzzDecodeProposal(f *testing.F) {
	p, _ := encodeProposal(42, store.Mutation{Op: store.OpCreate, Kind: "Service", Name: "web", Now: time.Unix(0, 0)})
	f.Add(p)
	f.Add([]byte{proposalV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = decodeProposal(b)
	})
}

func FuzzDecodeSnapshot(f *testing.F) {
	sd, _ := json.Marshal(snapshotData{ClusterID: "c", Revision: 3, Members: []Member{{ID: 1, Name: "a", RaftAddress: "x:1"}},
		Objects: []snapshotObj{{Kind: "Service", Name: "web", Object: json.RawMessage(`{}`)}}})
	f.Add(sd)
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		for _, o := range sd.Objects {
			if o.Kind == "" || o.Name == "" {
				t.Fatal("accepted an object without kind or name")
			}
		}
	})
}

func FuzzDecodeJoin(f *testing.F) {
	f.Add([]byte(`{"name":"n1","raftAddress":"127.0.0.1:7481"}`), []byte(`{"clusterID":"c","id":2,"members":[{"id":1,"name":"n0","raftAddress":"a:1"}]}`))
	f.Fuzz(func(t *testing.T, req, resp []byte) {
		if r, err := decodeJoinRequest(bytes.NewReader(req)); err == nil && (r.Name == "" || r.RaftAddress == "") {
			t.Fatalf("accepted join request %+v", r)
		}
		if r, err := decodeJoinResponse(resp); err == nil && (r.ID == 0 || len(r.Members) == 0) {
			t.Fatalf("accepted join response %+v", r)
		}
		_, _ = decodeCCContext(req)
	})
}
