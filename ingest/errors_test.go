package ingest

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorMessage(t *testing.T) {
	e := &Error{Line: 3, Msg: `invalid label name "1abc"`, Err: ErrInvalidLabelName}
	if got, want := e.Error(), `line 3: invalid label name "1abc"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(e, ErrInvalidLabelName) {
		t.Error("errors.Is does not see the sentinel")
	}
	wrapped := fmt.Errorf("decode body: %w", e)
	var got *Error
	if !errors.As(wrapped, &got) || got.Line != 3 {
		t.Errorf("errors.As through a wrap: %v, line %d", got, got.Line)
	}
	if got, want := (&Error{Msg: "empty body", Err: ErrEmptyBody}).Error(), "empty body"; got != want {
		t.Errorf("Error() without a line = %q, want %q", got, want)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits().Validate() = %v", err)
	}
	if err := (Limits{}).Validate(); err != nil {
		t.Errorf("zero Limits (no limits) invalid: %v", err)
	}
	d := DefaultLimits()
	if d.MaxSeriesPerRequest <= 0 || d.MaxSamplesPerRequest <= 0 || d.MaxLabelsPerSeries <= 0 ||
		d.MaxLabelNameLength <= 0 || d.MaxLabelValueLength <= 0 {
		t.Errorf("DefaultLimits leaves a field unlimited: %+v", d)
	}
	for _, l := range []Limits{
		{MaxSeriesPerRequest: -1},
		{MaxSamplesPerRequest: -1},
		{MaxLabelsPerSeries: -1},
		{MaxLabelNameLength: -1},
		{MaxLabelValueLength: -1},
	} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v: Validate() = nil, want an error", l)
		}
	}
}
