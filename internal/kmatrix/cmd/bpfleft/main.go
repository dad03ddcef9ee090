//go:build linux

// Command bpfleft tells which eBPF programs and links were left in the kernel: the kernel
// matrix (scripts/kmatrix/scenario.sh) saves the ids loaded before the collector starts and,
// after it stopped, lists what is loaded now and was not then.
//
//	bpfleft -save baseline           # before
//	bpfleft -since baseline -wait 10s # after: exit status 1 while anything new is left
//
// Programs are released asynchronously (RCU) after their last file descriptor closes, so
// -since looks again every 100 ms until nothing new is left or -wait has passed.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// object is one kernel object as the baseline file records it: "prog 42" or "link 7".
type object struct {
	kind string // "prog" or "link"
	id   uint32
	desc string // for humans: name and type
}

func (o object) key() string { return fmt.Sprintf("%s %d", o.kind, o.id) }

func main() {
	save := flag.String("save", "", "write the ids of the loaded programs and links to this file")
	since := flag.String("since", "", "list programs and links loaded now that are not in this file (written by -save)")
	wait := flag.Duration("wait", 0, "with -since: keep looking until nothing new is left or this much time has passed")
	flag.Parse()
	if (*save == "") == (*since == "") {
		fmt.Fprintln(os.Stderr, "bpfleft: give exactly one of -save FILE or -since FILE")
		os.Exit(2)
	}
	if err := run(*save, *since, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "bpfleft:", err)
		os.Exit(1)
	}
}

func run(save, since string, wait time.Duration) error {
	if save != "" {
		objs, err := loaded()
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, o := range objs {
			fmt.Fprintln(&b, o.key())
		}
		if err := os.WriteFile(save, []byte(b.String()), 0o644); err != nil {
			return err
		}
		fmt.Printf("baseline: %d programs and links loaded\n", len(objs))
		return nil
	}
	before, err := readBaseline(since)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		objs, err := loaded()
		if err != nil {
			return err
		}
		var left []object
		for _, o := range objs {
			if !before[o.key()] {
				left = append(left, o)
			}
		}
		if len(left) == 0 {
			fmt.Println("left: none")
			return nil
		}
		if time.Now().After(deadline) {
			for _, o := range left {
				fmt.Printf("left: %s %s\n", o.key(), o.desc)
			}
			return fmt.Errorf("%d programs or links left after %s", len(left), wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readBaseline(path string) (map[string]bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			ids[line] = true
		}
	}
	return ids, sc.Err()
}

// loaded lists every program and link in the kernel. An object that goes away between its
// id and its file descriptor is simply gone.
func loaded() ([]object, error) {
	var objs []object
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list programs: %w", err)
		}
		id = next
		o := object{kind: "prog", id: uint32(id)}
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			if info, err := p.Info(); err == nil {
				o.desc = fmt.Sprintf("%s (%s)", info.Name, info.Type)
			}
			p.Close()
		} else if errors.Is(err, os.ErrNotExist) {
			continue
		}
		objs = append(objs, o)
	}
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		o := object{kind: "link", id: uint32(it.ID)}
		if info, err := it.Link.Info(); err == nil {
			o.desc = fmt.Sprintf("type %d of prog %d", info.Type, info.Program)
		}
		objs = append(objs, o)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].key() < objs[j].key() })
	return objs, nil
}
