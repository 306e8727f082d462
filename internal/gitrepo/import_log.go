package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"unicode"
)

const (
	// impSubjectColumns is as much of a subject as Log keeps: a guest
	// may write a commit whose subject is megabytes long.
	impSubjectColumns = 200
	// impLogLineMax bounds one line of Log's git output (an id of up
	// to 64 digits, a NUL and a subject of impSubjectColumns columns
	// of up to 4 bytes).
	impLogLineMax = 64 + 1 + 4*impSubjectColumns + 1
	// impLogMax bounds max, so the output stays bounded.
	impLogMax = 100000
)

// Log lists base..tip in repo, newest first, at most max commits (for
// messages and `workspace show`); truncated says when there were more.
// A subject is cut to 200 columns and its control characters replaced,
// since the guest wrote it and a terminal shows it.
func Log(ctx context.Context, repo Repo, base, tip string, max int) ([]Commit, bool, error) {
	return impLog(ctx, repo, nil, base, tip, max)
}

// impLog is Log with env added (a quarantine's, to list commits not yet
// in the host).
func impLog(ctx context.Context, repo Repo, env []string, base, tip string, max int) ([]Commit, bool, error) {
	for _, rev := range []string{base, tip} {
		if rev == "" || strings.HasPrefix(rev, "-") || strings.Contains(rev, "..") || strings.ContainsAny(rev, " \t\n\x00") {
			return nil, false, invalid("log: %q is not a commit (give a commit id or a branch name)", rev)
		}
	}
	if max < 1 || max > impLogMax {
		return nil, false, invalid("log: at most %d commits must be between 1 and %d", max, impLogMax)
	}
	if repo.Root == "" {
		return nil, false, invalid("log: the repository was not inspected")
	}
	e := append(append([]string{}, impEnv...), env...)
	var out bytes.Buffer
	args := []string{"log", "--no-show-signature", "--no-color", "-n", fmt.Sprint(max + 1),
		fmt.Sprintf("--format=%%H%%x00%%<(%d,trunc)%%s", impSubjectColumns),
		"--end-of-options", base + ".." + tip}
	_, err := runGit(ctx, repo.Root, append(append(append([]string{}, baseEnv...), isolatedEnv...), e...), nil,
		&limitedBuffer{buf: &out, max: (max + 1) * impLogLineMax}, args...)
	if err != nil {
		return nil, false, fmt.Errorf("list the commits %s..%s in %s: %w", impShortID(base), impShortID(tip), repo.Root, err)
	}
	commits, err := impParseLog(out.String())
	if err != nil {
		return nil, false, fmt.Errorf("list the commits %s..%s in %s: %w", impShortID(base), impShortID(tip), repo.Root, err)
	}
	truncated := len(commits) > max
	if truncated {
		commits = commits[:max]
	}
	return commits, truncated, nil
}

// impParseLog reads "<id>\x00<subject>" lines.
func impParseLog(out string) ([]Commit, error) {
	var commits []Commit
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		hash, subject, ok := strings.Cut(line, "\x00")
		if !ok || (!bundleIsID(hash, 40) && !bundleIsID(hash, 64)) {
			return nil, fmt.Errorf("git log printed %q, not a commit id and a subject", bundleShort(line))
		}
		commits = append(commits, Commit{Hash: hash, Subject: impCleanSubject(subject)})
	}
	return commits, nil
}

// impCleanSubject makes a subject safe to print: valid UTF-8, no
// control or bidirectional formatting character, no padding.
func impCleanSubject(s string) string {
	s = strings.ToValidUTF8(strings.TrimRight(s, " "), "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func impShortID(id string) string {
	if len(id) > 12 && bundleIsID(id, len(id)) {
		return id[:12]
	}
	return id
}
