package fcdouble

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

type level int

const (
	levelOff level = iota
	levelError
	levelWarn
	levelInfo
	levelDebug
	levelTrace
)

var levelNames = map[level]string{levelError: "ERROR", levelWarn: "WARN", levelInfo: "INFO", levelDebug: "DEBUG", levelTrace: "TRACE"}

// parseLevel reads a level the API definition has already checked
// (case-insensitively).
func parseLevel(s string) level {
	switch strings.ToLower(s) {
	case "off":
		return levelOff
	case "error":
		return levelError
	case "warning":
		return levelWarn
	case "debug":
		return levelDebug
	case "trace":
		return levelTrace
	}
	return levelInfo
}

// fileLogger writes Firecracker-shaped log lines: to stderr until PUT
// /logger names a file, then there.
type fileLogger struct {
	mu        sync.Mutex
	w         io.Writer
	level     level
	showLevel bool
	origin    bool
	id        string
}

func (l *fileLogger) setFile(w io.Writer) {
	l.mu.Lock()
	l.w = w
	l.mu.Unlock()
}

func (l *fileLogger) configure(lvl level, showLevel, origin bool) {
	l.mu.Lock()
	l.level, l.showLevel, l.origin = lvl, showLevel, origin
	l.mu.Unlock()
}

func (l *fileLogger) log(lvl level, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lvl > l.level || l.level == levelOff {
		return
	}
	tag := l.id + ":fc_api"
	if l.showLevel {
		tag += ":" + levelNames[lvl]
	}
	if l.origin {
		tag += ":fcdouble"
	}
	fmt.Fprintf(l.w, "%s [%s] %s\n", time.Now().Format("2006-01-02T15:04:05.000000000"), tag, msg)
}
