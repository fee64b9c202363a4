package engine

import (
	"fmt"
	"sort"
)

// AssetAudit is one asset's totals over every account, fee account included.
type AssetAudit struct {
	Asset        string
	Total        int64 // Σ balances
	Reserved     int64 // Σ reserved balances
	Credits      int64 // Σ credits applied
	Debits       int64 // Σ debits applied
	Reservations int64 // Σ what open reservations lock in the asset
}

// OwnerAudit counts an owner's open reservations.
type OwnerAudit struct {
	Owner        string
	Shard        uint32
	Reservations int
}

// Audit is what the joint invariants are checked against.
type Audit struct {
	Assets       []AssetAudit // by asset id
	Streams      map[StreamID]uint64
	Owners       []OwnerAudit // by owner, shard
	Reservations int
	// Problem names the first violation of conservation (Total = Credits − Debits per asset) or of
	// reservation consistency (each account's reserved balance = Σ its reservations); "" if none.
	Problem string
}

// Audit computes the totals. It holds the commit lock, so no durable change (which is what moves
// balances) runs meanwhile, and each account's lock while it reads that account: it is for
// operators and tests, not for the order path.
func (e *Engine) Audit() Audit {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	cat := e.catalog.Load()
	byIndex := make([]AssetAudit, len(cat.assets))
	for _, a := range cat.assets {
		byIndex[a.index].Asset = a.ID
	}
	for _, r := range e.refs {
		a := cat.assets[r.t.Asset]
		if a == nil {
			continue
		}
		if r.kind == EventCredit {
			byIndex[a.index].Credits += r.t.Amount
		} else {
			byIndex[a.index].Debits += r.t.Amount
		}
	}
	out := Audit{Streams: make(map[StreamID]uint64, len(e.settle.streams))}
	for k, v := range e.settle.streams {
		out.Streams[k] = v
	}
	owners := map[OwnerRef]int{}
	problem := func(format string, args ...any) {
		if out.Problem == "" {
			out.Problem = fmt.Sprintf(format, args...)
		}
	}
	for _, acct := range e.accounts.all() {
		acct.mu.Lock()
		held := make([]int64, len(byIndex))
		for i := range acct.reservations {
			r := &acct.reservations[i]
			if !r.live {
				continue
			}
			out.Reservations++
			held[r.symbol.reservedAsset(r.side).index] += r.amount
			if r.owner != 0 {
				owners[OwnerRef(r.owner)]++
			}
		}
		for i, b := range acct.balances {
			if i >= len(byIndex) {
				break
			}
			byIndex[i].Total += b.total
			byIndex[i].Reserved += b.reserved
			if b.reserved != held[i] {
				problem("account %q reserves %d %s but its reservations hold %d", acct.id, b.reserved, byIndex[i].Asset, held[i])
			}
			if b.available() < 0 {
				problem("account %q has %d %s against %d reserved", acct.id, b.total, byIndex[i].Asset, b.reserved)
			}
		}
		for i := range held {
			byIndex[i].Reservations += held[i]
			if i >= len(acct.balances) && held[i] != 0 {
				problem("account %q has reservations of %d %s but no balance", acct.id, held[i], byIndex[i].Asset)
			}
		}
		acct.mu.Unlock()
	}
	for _, a := range byIndex {
		if a.Total != a.Credits-a.Debits {
			problem("asset %s: balances sum to %d but credits less debits are %d", a.Asset, a.Total, a.Credits-a.Debits)
		}
	}
	sort.Slice(byIndex, func(i, j int) bool { return byIndex[i].Asset < byIndex[j].Asset })
	out.Assets = byIndex
	for ref, n := range owners {
		if k, ok := e.ownerKey(ref); ok {
			out.Owners = append(out.Owners, OwnerAudit{Owner: k.name, Shard: k.shard, Reservations: n})
		}
	}
	sort.Slice(out.Owners, func(i, j int) bool {
		if out.Owners[i].Owner != out.Owners[j].Owner {
			return out.Owners[i].Owner < out.Owners[j].Owner
		}
		return out.Owners[i].Shard < out.Owners[j].Shard
	})
	return out
}

// Halted reports the kill switches: whether the global one is halted, and up to limit accounts
// (in id order) whose own switch is halted. It reads each account under its lock; it is for the
// once-a-second probe of the owner of the resting orders, which cancels them.
func (e *Engine) Halted(limit int) (all bool, accounts []string) {
	all = TradingState(e.global.Load()) == TradingHalted
	for _, acct := range e.accounts.all() {
		acct.mu.Lock()
		halted := acct.state == TradingHalted
		acct.mu.Unlock()
		if halted {
			accounts = append(accounts, acct.id)
		}
	}
	sort.Strings(accounts)
	return all, accounts[:min(len(accounts), limit)]
}
