package rpc

import (
	"context"
	"encoding/json"
	"testing"
)

// FuzzDispatch feeds arbitrary frames to the server's decode-and-dispatch
// path. Whatever arrives, the answer must be a well-formed response with
// an op id, a known code when it is an error, and the request's own op id
// when it carried a valid one.
func FuzzDispatch(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"method":"test.echo","params":{"text":"hi"}}`,
		`{"version":1,"method":"test.echo","params":{"text":"hi"},"op_id":"op-0123456789ab"}`,
		`{"version":2,"method":"test.echo"}`,
		`{"version":1,"method":"nope"}`,
		`{"version":1,"method":"test.echo","params":{"bogus":1}}`,
		`{"version":1,"method":"test.echo","params":"str"}`,
		`{"version":1,"method":"test.opid","op_id":""}`,
		`{"version":1,"method":"test.notfound"}`,
		`{"version":1e400,"method":"x"}`,
		`{"method":"\u0000"}`,
		`null`,
		`{}`,
		`[`,
		"",
	} {
		f.Add([]byte(seed))
	}
	s := &Server{Methods: testMethods()}
	delete(s.Methods, "test.slow")
	delete(s.Methods, "test.panic")
	f.Fuzz(func(t *testing.T, frame []byte) {
		resp := s.dispatch(context.Background(), frame)
		if resp.OpID == "" {
			t.Fatalf("response without op id for %q", frame)
		}
		if (resp.Error == nil) == (resp.Result == nil) {
			t.Fatalf("response must carry exactly one of result and error: %+v", resp)
		}
		if resp.Error != nil {
			if !resp.Error.Code.Known() {
				t.Fatalf("unknown code %q", resp.Error.Code)
			}
			if resp.Error.OpID != resp.OpID {
				t.Fatalf("error op id %q != response op id %q", resp.Error.OpID, resp.OpID)
			}
		}
		if req, err := decodeRequest(frame); err == nil && req.OpID != "" && resp.OpID != req.OpID {
			t.Fatalf("request op id %q not adopted, answered under %q", req.OpID, resp.OpID)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Fatalf("response does not encode: %v", err)
		}
	})
}
