package engine

import (
	"maps"
	"slices"
	"sync/atomic"

	"github.com/bourse-dev/bourse/pkg/errs"
)

// maxScale is the largest number of decimals an asset, price or quantity may have: 10^18 is the
// largest power of ten in int64.
const maxScale = 18

// Asset is something held in balances. Amounts are integers in units of 10^-Scale: with USD at
// scale 8, an amount of 150_000_000 is 1.5 USD.
type Asset struct {
	ID    string `json:"id"`
	Scale uint8  `json:"scale"`
}

// SymbolSpec describes a tradable pair. Prices are integer ticks of 10^-PriceScale quote per base
// and quantities integer lots of 10^-QtyScale base, so that
//
//	notional (quote units) = price × qty × 10^(quote scale − PriceScale − QtyScale)
//	base amount (base units) = qty × 10^(base scale − QtyScale)
//
// are exact integers; DefineSymbol enforces the scale constraints that make them so.
type SymbolSpec struct {
	ID         string `json:"id"`
	Base       string `json:"base"`
	Quote      string `json:"quote"`
	PriceScale uint8  `json:"price_scale"`
	QtyScale   uint8  `json:"qty_scale"`
	// TakerFeePPM is the fee rate reserved for buy orders, in parts per million of the notional.
	// The fee actually charged comes with each execution.
	TakerFeePPM int64 `json:"taker_fee_ppm"`
	// ReferencePrice (ticks) anchors the price band until the first trade sets a mark price. Zero
	// means no band applies before the first trade.
	ReferencePrice int64 `json:"reference_price"`
}

// asset is the engine's record of an Asset; index addresses per-account balance slices.
type asset struct {
	Asset
	index int32
}

// symbol is an immutable snapshot of a symbol's configuration plus its live mark price. Redefining a
// symbol (new fee or reference price) publishes a new snapshot sharing the same mark and index.
type symbol struct {
	spec        SymbolSpec
	index       int32
	base, quote *asset
	notionalMul int64 // 10^(quote scale − price scale − qty scale)
	baseMul     int64 // 10^(base scale − qty scale)
	// mark is the last trade price in ticks, 0 before the first trade. It is written only by
	// executions (under the commit lock) and read without locks by CheckOrder and views.
	mark *atomic.Int64
}

// catalog is the copy-on-write set of assets and symbols: CheckOrder reads it with one atomic load,
// and the rare definitions publish a new copy.
type catalog struct {
	assets  map[string]*asset
	symbols map[string]*symbol
	// symbolList is indexed by symbol.index.
	symbolList []*symbol
	assetList  []*asset
}

func (c *catalog) clone() *catalog {
	return &catalog{
		assets:     maps.Clone(c.assets),
		symbols:    maps.Clone(c.symbols),
		symbolList: slices.Clone(c.symbolList),
		assetList:  slices.Clone(c.assetList),
	}
}

// notional returns price × qty in quote units, or false if it does not fit in int64.
func (s *symbol) notional(price, qty int64) (int64, bool) {
	pq, ok := mulNonNeg(price, qty)
	if !ok {
		return 0, false
	}
	return mulNonNeg(pq, s.notionalMul)
}

// baseUnits returns qty lots in base units, or false if it does not fit in int64.
func (s *symbol) baseUnits(qty int64) (int64, bool) { return mulNonNeg(qty, s.baseMul) }

// reservedAsset is the asset an order on side locks: quote to pay for a buy, base to deliver on a sell.
func (s *symbol) reservedAsset(side Side) *asset {
	if side == SideBuy {
		return s.quote
	}
	return s.base
}

// reserveAmount is what an order for qty lots at price locks: notional plus the maximum fee (rounded
// up) for a buy, the base amount for a sell. It is also what stays locked for the unfilled rest of
// a reservation, which is how fills consume a reservation proportionally and free any surplus.
func (s *symbol) reserveAmount(side Side, price, qty, feePPM int64) (int64, bool) {
	if side == SideSell {
		return s.baseUnits(qty)
	}
	n, ok := s.notional(price, qty)
	if !ok {
		return 0, false
	}
	return addChecked(n, ceilPPM(n, feePPM))
}

// DefineAsset adds an asset. Defining an existing asset again with the same scale changes nothing and
// persists nothing; a different scale is refused because it would reinterpret every balance.
func (e *Engine) DefineAsset(a Asset, persist PersistFunc) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.defineAsset(a, persist)
}

func (e *Engine) defineAsset(a Asset, persist PersistFunc) error {
	if err := validateCode("asset.id", a.ID); err != nil {
		return err
	}
	if a.Scale > maxScale {
		return errs.Invalid("asset.scale", "must be at most %d", maxScale)
	}
	cat := e.catalog.Load()
	if old, ok := cat.assets[a.ID]; ok {
		if old.Asset == a {
			return nil
		}
		return errs.New(errs.KindFailedPrecondition, "asset %s already has scale %d", a.ID, old.Scale)
	}
	ev := Event{Kind: EventDefineAsset, Asset: &a}
	return e.commit(&ev, persist, func() {
		next := cat.clone()
		na := &asset{Asset: a, index: int32(len(next.assetList))}
		next.assets[a.ID] = na
		next.assetList = append(next.assetList, na)
		e.catalog.Store(next)
	})
}

// DefineSymbol adds a symbol, or updates the fee and reference price of an existing one. The assets
// and scales of an existing symbol cannot change, since positions and open reservations are counted
// in them. A definition identical to the current one changes nothing and persists nothing.
func (e *Engine) DefineSymbol(spec SymbolSpec, persist PersistFunc) error {
	e.commitMu.Lock()
	defer e.commitMu.Unlock()
	return e.defineSymbol(spec, persist)
}

func (e *Engine) defineSymbol(spec SymbolSpec, persist PersistFunc) error {
	if err := validateCode("symbol.id", spec.ID); err != nil {
		return err
	}
	cat := e.catalog.Load()
	base, quote := cat.assets[spec.Base], cat.assets[spec.Quote]
	switch {
	case base == nil:
		return errs.New(errs.KindNotFound, "symbol.base: unknown asset %q", spec.Base)
	case quote == nil:
		return errs.New(errs.KindNotFound, "symbol.quote: unknown asset %q", spec.Quote)
	case base == quote:
		return errs.Invalid("symbol.quote", "must differ from the base asset")
	case spec.PriceScale > maxScale:
		return errs.Invalid("symbol.price_scale", "must be at most %d", maxScale)
	case spec.QtyScale > base.Scale:
		return errs.Invalid("symbol.qty_scale", "must not exceed the base scale %d so a lot is a whole number of base units", base.Scale)
	case int(spec.PriceScale)+int(spec.QtyScale) > int(quote.Scale):
		return errs.Invalid("symbol.price_scale", "price scale + qty scale must not exceed the quote scale %d so notionals are exact", quote.Scale)
	case spec.TakerFeePPM < 0 || spec.TakerFeePPM > ppm:
		return errs.Invalid("symbol.taker_fee_ppm", "must be between 0 and %d", ppm)
	case spec.ReferencePrice < 0:
		return errs.Invalid("symbol.reference_price", "must not be negative")
	}
	old := cat.symbols[spec.ID]
	if old != nil {
		if old.spec == spec {
			return nil
		}
		if old.spec.Base != spec.Base || old.spec.Quote != spec.Quote ||
			old.spec.PriceScale != spec.PriceScale || old.spec.QtyScale != spec.QtyScale {
			return errs.New(errs.KindFailedPrecondition, "symbol %s: only the fee and reference price can change", spec.ID)
		}
	}
	ev := Event{Kind: EventDefineSymbol, Symbol: &spec}
	return e.commit(&ev, persist, func() {
		next := cat.clone()
		s := &symbol{
			spec:        spec,
			base:        base,
			quote:       quote,
			notionalMul: pow10[quote.Scale-spec.PriceScale-spec.QtyScale],
			baseMul:     pow10[base.Scale-spec.QtyScale],
		}
		if old != nil {
			s.index, s.mark = old.index, old.mark
			next.symbolList[s.index] = s
		} else {
			s.index, s.mark = int32(len(next.symbolList)), new(atomic.Int64)
			next.symbolList = append(next.symbolList, s)
		}
		next.symbols[spec.ID] = s
		e.catalog.Store(next)
	})
}

// validateCode checks an asset or symbol id: 1–32 characters of A–Z, a–z, 0–9, '-', '_', '.', '/'.
func validateCode(field, id string) error {
	if id == "" || len(id) > 32 {
		return errs.Invalid(field, "must be 1 to 32 characters")
	}
	for i := range len(id) {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/') {
			return errs.Invalid(field, "must contain only letters, digits, '-', '_', '.' or '/'")
		}
	}
	return nil
}
