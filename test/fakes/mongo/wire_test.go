package mongo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

func opMsg(t testing.TB, flags wiremessage.MsgFlag, body bson.D, seqID string, seq []bson.D) []byte {
	b, err := bson.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	idx, msg := wiremessage.AppendHeaderStart(nil, 7, 0, wiremessage.OpMsg)
	msg = wiremessage.AppendMsgFlags(msg, flags)
	msg = wiremessage.AppendMsgSectionType(msg, wiremessage.SingleDocument)
	msg = append(msg, b...)
	if seqID != "" {
		msg = wiremessage.AppendMsgSectionType(msg, wiremessage.DocumentSequence)
		sidx, m2 := bsoncore.ReserveLength(msg)
		m2 = append(m2, seqID...)
		m2 = append(m2, 0)
		for _, d := range seq {
			db, _ := bson.Marshal(d)
			m2 = append(m2, db...)
		}
		msg = bsoncore.UpdateLength(m2, sidx, int32(len(m2[sidx:])))
	}
	if flags&wiremessage.ChecksumPresent != 0 {
		msg = append(msg, 0, 0, 0, 0)
		msg = bsoncore.UpdateLength(msg, idx, int32(len(msg[idx:])))
		binary.LittleEndian.PutUint32(msg[len(msg)-4:], crc32.Checksum(msg[:len(msg)-4], castagnoli))
		return msg
	}
	return bsoncore.UpdateLength(msg, idx, int32(len(msg[idx:])))
}

func TestDecodeOpMsg(t *testing.T) {
	msg := opMsg(t, wiremessage.ChecksumPresent, bson.D{{Key: "insert", Value: "c"}, {Key: "$db", Value: "x"}}, "documents", []bson.D{{{Key: "a", Value: 1}}, {{Key: "a", Value: 2}}})
	m, err := DecodeMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := m.CommandName(); name != "insert" || m.RequestID != 7 {
		t.Fatalf("decoded %+v", m)
	}
	docs, ok := m.Command.Lookup("documents").ArrayOK()
	if !ok {
		t.Fatalf("document sequence not folded in: %v", m.Command)
	}
	if vals, _ := docs.Values(); len(vals) != 2 {
		t.Fatalf("documents = %v", docs)
	}
	// A flipped bit fails the checksum.
	bad := bytes.Clone(msg)
	bad[len(bad)-6] ^= 1
	if _, err := DecodeMessage(bad); !errors.Is(err, ErrMessage) {
		t.Fatalf("corrupted message: %v", err)
	}
	// Unknown required flag bit.
	bad = opMsg(t, 1<<5, bson.D{{Key: "ping", Value: 1}}, "", nil)
	if _, err := DecodeMessage(bad); !errors.Is(err, ErrMessage) {
		t.Fatalf("unknown required flag: %v", err)
	}
}

func TestDecodeOpQueryUnwrapsQuery(t *testing.T) {
	q, _ := bson.Marshal(bson.D{{Key: "$query", Value: bson.D{{Key: "isMaster", Value: 1}, {Key: "helloOk", Value: true}}}, {Key: "$readPreference", Value: bson.D{{Key: "mode", Value: "primaryPreferred"}}}})
	idx, msg := wiremessage.AppendHeaderStart(nil, 3, 0, wiremessage.OpQuery)
	msg = wiremessage.AppendQueryFlags(msg, wiremessage.SecondaryOK)
	msg = wiremessage.AppendQueryFullCollectionName(msg, "admin.$cmd")
	msg = wiremessage.AppendQueryNumberToSkip(msg, 0)
	msg = wiremessage.AppendQueryNumberToReturn(msg, -1)
	msg = append(msg, q...)
	msg = bsoncore.UpdateLength(msg, idx, int32(len(msg)))
	m, err := DecodeMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := m.CommandName(); name != "isMaster" || !m.Legacy() || m.Collection != "admin.$cmd" {
		t.Fatalf("decoded %+v", m)
	}
}

// FuzzDecodeMessage: no input panics the decoder, and whatever decodes has a valid command
// document.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(opMsg(f, 0, bson.D{{Key: "hello", Value: 1}, {Key: "$db", Value: "admin"}}, "", nil))
	f.Add(opMsg(f, wiremessage.ChecksumPresent, bson.D{{Key: "insert", Value: "c"}}, "documents", []bson.D{{{Key: "a", Value: 1}}}))
	f.Add([]byte{16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xdd, 7, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatalf("error not wrapping ErrMessage: %v", err)
			}
			return
		}
		if err := m.Command.Validate(); err != nil {
			t.Fatalf("decoded an invalid command document: %v", err)
		}
		_, _ = m.CommandName()
		_ = encodeReply(1, m, m.Command)
	})
}
