package mongo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/wiremessage"
)

// The wire protocol as the MongoDB manual's "MongoDB Wire Protocol" page describes it: a 16-byte
// header (messageLength, requestID, responseTo, opCode, little-endian int32s), then the opcode's
// body.
const (
	headerLen = 16
	// MaxMessageSize is what the fake advertises as maxMessageSizeBytes and accepts, as mongod
	// does (48,000,000 bytes).
	MaxMessageSize = 48_000_000

	flagChecksumPresent = 1 << 0
	flagMoreToCome      = 1 << 1
	flagExhaustAllowed  = 1 << 16
	// OP_MSG flag bits 0-15 are required: a receiver must reject unknown ones.
	knownRequiredFlags = flagChecksumPresent | flagMoreToCome
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Message is one decoded request.
type Message struct {
	RequestID  int32
	ResponseTo int32
	OpCode     wiremessage.OpCode
	// Flags are the OP_MSG flagBits or the OP_QUERY flags.
	Flags uint32
	// Command is the OP_MSG body (section kind 0) with each kind-1 document sequence appended
	// as an array field of the same name, or the OP_QUERY query document (unwrapped from
	// $query when the driver wraps it with a read preference).
	Command bson.Raw
	// Collection is the OP_QUERY fullCollectionName ("admin.$cmd").
	Collection string
}

// Legacy reports whether the request came as OP_QUERY (and wants an OP_REPLY).
func (m *Message) Legacy() bool { return m.OpCode == wiremessage.OpQuery }

// ErrMessage is wrapped by every decoding error.
var ErrMessage = errors.New("mongo fake: bad message")

// ReadMessage reads one message from r and decodes it.
func ReadMessage(r io.Reader) (*Message, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int32(binary.LittleEndian.Uint32(hdr[:]))
	if n < headerLen || n > MaxMessageSize {
		return nil, fmt.Errorf("%w: messageLength %d out of range", ErrMessage, n)
	}
	buf := make([]byte, n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[4:]); err != nil {
		return nil, err
	}
	return DecodeMessage(buf)
}

// DecodeMessage decodes one whole message (header included).
func DecodeMessage(b []byte) (*Message, error) {
	length, reqID, respTo, op, rem, ok := wiremessage.ReadHeader(b)
	if !ok {
		return nil, fmt.Errorf("%w: short header", ErrMessage)
	}
	if int(length) != len(b) {
		return nil, fmt.Errorf("%w: messageLength %d, have %d bytes", ErrMessage, length, len(b))
	}
	m := &Message{RequestID: reqID, ResponseTo: respTo, OpCode: op}
	switch op {
	case wiremessage.OpMsg:
		return m, decodeOpMsg(m, b, rem)
	case wiremessage.OpQuery:
		return m, decodeOpQuery(m, rem)
	default:
		// OP_COMPRESSED is never sent: the fake advertises no compressors.
		return nil, fmt.Errorf("%w: opCode %d not supported", ErrMessage, op)
	}
}

func decodeOpMsg(m *Message, whole, rem []byte) error {
	flags, rem, ok := wiremessage.ReadMsgFlags(rem)
	if !ok {
		return fmt.Errorf("%w: OP_MSG without flagBits", ErrMessage)
	}
	m.Flags = uint32(flags)
	if unknown := m.Flags & 0xffff &^ knownRequiredFlags; unknown != 0 {
		return fmt.Errorf("%w: OP_MSG unknown required flag bits %#x", ErrMessage, unknown)
	}
	if m.Flags&flagChecksumPresent != 0 {
		if len(rem) < 4 {
			return fmt.Errorf("%w: OP_MSG checksum missing", ErrMessage)
		}
		body := whole[:len(whole)-4]
		want := binary.LittleEndian.Uint32(whole[len(whole)-4:])
		if got := crc32.Checksum(body, castagnoli); got != want {
			return fmt.Errorf("%w: OP_MSG checksum %#x, computed %#x", ErrMessage, want, got)
		}
		rem = rem[:len(rem)-4]
	}
	var body bsoncore.Document
	type seq struct {
		id   string
		docs []bsoncore.Document
	}
	var seqs []seq
	for len(rem) > 0 {
		var st wiremessage.SectionType
		st, rem, ok = wiremessage.ReadMsgSectionType(rem)
		if !ok {
			return fmt.Errorf("%w: OP_MSG section kind missing", ErrMessage)
		}
		switch st {
		case wiremessage.SingleDocument:
			if body != nil {
				return fmt.Errorf("%w: OP_MSG with two body sections", ErrMessage)
			}
			body, rem, ok = wiremessage.ReadMsgSectionSingleDocument(rem)
			if !ok {
				return fmt.Errorf("%w: OP_MSG body section truncated", ErrMessage)
			}
			if err := body.Validate(); err != nil {
				return fmt.Errorf("%w: OP_MSG body: %v", ErrMessage, err)
			}
		case wiremessage.DocumentSequence:
			var s seq
			s.id, s.docs, rem, ok = readDocumentSequence(rem)
			if !ok {
				return fmt.Errorf("%w: OP_MSG document sequence malformed", ErrMessage)
			}
			seqs = append(seqs, s)
		default:
			return fmt.Errorf("%w: OP_MSG section kind %d", ErrMessage, st)
		}
	}
	if body == nil {
		return fmt.Errorf("%w: OP_MSG without a body section", ErrMessage)
	}
	if len(seqs) == 0 {
		m.Command = bson.Raw(body)
		return nil
	}
	// Fold the sequences into the body, as mongod's command parser does.
	elems, err := body.Elements()
	if err != nil {
		return fmt.Errorf("%w: OP_MSG body: %v", ErrMessage, err)
	}
	idx, doc := bsoncore.AppendDocumentStart(nil)
	for _, e := range elems {
		doc = append(doc, e...)
	}
	for _, s := range seqs {
		aidx, d := bsoncore.AppendArrayElementStart(doc, s.id)
		for i, sd := range s.docs {
			d = bsoncore.AppendDocumentElement(d, fmt.Sprint(i), sd)
		}
		doc, _ = bsoncore.AppendArrayEnd(d, aidx)
	}
	doc, _ = bsoncore.AppendDocumentEnd(doc, idx)
	m.Command = bson.Raw(doc)
	return nil
}

// readDocumentSequence reads a kind-1 section (int32 size, cstring identifier, documents),
// validating every document; wiremessage's reader trusts the lengths it is given.
func readDocumentSequence(src []byte) (string, []bsoncore.Document, []byte, bool) {
	if len(src) < 4 {
		return "", nil, src, false
	}
	size := int32(binary.LittleEndian.Uint32(src))
	if size < 5 || int(size) > len(src) {
		return "", nil, src, false
	}
	sec, rem := src[4:size], src[size:]
	i := 0
	for i < len(sec) && sec[i] != 0 {
		i++
	}
	if i == len(sec) {
		return "", nil, src, false
	}
	id := string(sec[:i])
	sec = sec[i+1:]
	var docs []bsoncore.Document
	for len(sec) > 0 {
		d, rest, ok := bsoncore.ReadDocument(sec)
		if !ok || d.Validate() != nil {
			return "", nil, src, false
		}
		docs = append(docs, d)
		sec = rest
	}
	return id, docs, rem, true
}

func decodeOpQuery(m *Message, rem []byte) error {
	flags, rem, ok := wiremessage.ReadQueryFlags(rem)
	if !ok {
		return fmt.Errorf("%w: OP_QUERY without flags", ErrMessage)
	}
	m.Flags = uint32(flags)
	m.Collection, rem, ok = wiremessage.ReadQueryFullCollectionName(rem)
	if !ok {
		return fmt.Errorf("%w: OP_QUERY without fullCollectionName", ErrMessage)
	}
	if _, rem, ok = wiremessage.ReadQueryNumberToSkip(rem); !ok {
		return fmt.Errorf("%w: OP_QUERY without numberToSkip", ErrMessage)
	}
	if _, rem, ok = wiremessage.ReadQueryNumberToReturn(rem); !ok {
		return fmt.Errorf("%w: OP_QUERY without numberToReturn", ErrMessage)
	}
	q, rem, ok := wiremessage.ReadQueryQuery(rem)
	if !ok {
		return fmt.Errorf("%w: OP_QUERY query truncated", ErrMessage)
	}
	if err := q.Validate(); err != nil {
		return fmt.Errorf("%w: OP_QUERY query: %v", ErrMessage, err)
	}
	if len(rem) > 0 {
		// An optional returnFieldsSelector; commands never carry one, but it must be a document.
		rfs, rest, ok := bsoncore.ReadDocument(rem)
		if !ok || len(rest) != 0 || rfs.Validate() != nil {
			return fmt.Errorf("%w: OP_QUERY trailing bytes", ErrMessage)
		}
	}
	// With a read preference the driver wraps the command: {$query: {...}, $readPreference: ...}.
	if inner, err := q.LookupErr("$query"); err == nil {
		d, ok := inner.DocumentOK()
		if !ok {
			return fmt.Errorf("%w: OP_QUERY $query is not a document", ErrMessage)
		}
		q = d
	}
	m.Command = bson.Raw(q)
	return nil
}

// CommandName is the command's first key, as mongod reads it.
func (m *Message) CommandName() (string, error) {
	e, err := m.Command.IndexErr(0)
	if err != nil {
		return "", fmt.Errorf("%w: empty command document", ErrMessage)
	}
	return e.Key(), nil
}

// encodeReply builds the reply to req: OP_REPLY for an OP_QUERY, OP_MSG otherwise.
func encodeReply(reqID int32, req *Message, doc []byte) []byte {
	if req.Legacy() {
		// OP_REPLY: responseFlags (AwaitCapable, as mongod sets), cursorID 0, startingFrom 0,
		// numberReturned 1, the document.
		idx, b := wiremessage.AppendHeaderStart(nil, reqID, req.RequestID, wiremessage.OpReply)
		b = wiremessage.AppendReplyFlags(b, wiremessage.AwaitCapable)
		b = wiremessage.AppendReplyCursorID(b, 0)
		b = wiremessage.AppendReplyStartingFrom(b, 0)
		b = wiremessage.AppendReplyNumberReturned(b, 1)
		b = append(b, doc...)
		return bsoncore.UpdateLength(b, idx, int32(len(b)))
	}
	idx, b := wiremessage.AppendHeaderStart(nil, reqID, req.RequestID, wiremessage.OpMsg)
	b = wiremessage.AppendMsgFlags(b, 0)
	b = wiremessage.AppendMsgSectionType(b, wiremessage.SingleDocument)
	b = append(b, doc...)
	return bsoncore.UpdateLength(b, idx, int32(len(b)))
}
