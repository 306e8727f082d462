package config

import (
	"bytes"
	"fmt"

	"github.com/BurntSushi/toml"
)

// keyError is one problem with one key of a config file. Key is dotted
// for nested keys ("vm_defaults.memory_mib") and indexed from 0 for
// file_sync entries ("file_sync[2].guest").
type keyError struct {
	Source string
	Key    string
	Err    error
}

func (e *keyError) Error() string {
	return fmt.Sprintf("config %s: %s: %v", e.Source, e.Key, e.Err)
}

func (e *keyError) Unwrap() error { return e.Err }

// syntaxError is a file that is not valid TOML. It keeps the line, and
// the key being read when the decoder knows it; the toml.ParseError stays
// reachable with errors.As for callers that want to print the offending
// line (ParseError.ErrorWithPosition).
type syntaxError struct {
	source string
	line   int
	err    toml.ParseError
}

func newSyntaxError(source string, data []byte, pe toml.ParseError) *syntaxError {
	return &syntaxError{source: source, line: errorLine(data, pe), err: pe}
}

func (e *syntaxError) Error() string {
	if e.err.LastKey != "" {
		return fmt.Sprintf("config %s: line %d: %s: %s", e.source, e.line, e.err.LastKey, e.err.Message)
	}
	return fmt.Sprintf("config %s: line %d: %s", e.source, e.line, e.err.Message)
}

// errorLine recounts the line from the error's byte offset: the decoder
// puts an error found at a line's closing newline ("[vm_defaults" with
// no "]") on the line after it.
func errorLine(data []byte, pe toml.ParseError) int {
	// The decoder drops a byte order mark before counting offsets.
	for _, bom := range [][]byte{{0xef, 0xbb, 0xbf}, {0xff, 0xfe}, {0xfe, 0xff}} {
		if bytes.HasPrefix(data, bom) {
			data = data[len(bom):]
			break
		}
	}
	if s := pe.Position.Start; s > 0 && s <= len(data) {
		return 1 + bytes.Count(data[:s], []byte("\n"))
	}
	return pe.Position.Line
}

func (e *syntaxError) Unwrap() error { return e.err }
