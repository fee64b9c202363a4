package cli

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writePlot draws loss (top) and held-out accuracy (bottom) against the step into a PNG.
func writePlot(path, title string, c curve) error {
	lossPlot := plot.New()
	lossPlot.Title.Text = title
	lossPlot.Y.Label.Text = "loss"
	lossPlot.Add(plotter.NewGrid())
	if err := addLine(lossPlot, c.lossSteps, c.loss, color.RGBA{R: 200, G: 40, B: 40, A: 255}); err != nil {
		return err
	}
	accPlot := plot.New()
	accPlot.X.Label.Text = "step"
	accPlot.Y.Label.Text = "accuracy"
	accPlot.Y.Min, accPlot.Y.Max = 0, 1
	accPlot.Add(plotter.NewGrid())
	if len(c.acc) > 0 {
		if err := addLine(accPlot, c.accSteps, c.acc, color.RGBA{R: 30, G: 90, B: 200, A: 255}); err != nil {
			return err
		}
	}
	accPlot.X.Min, accPlot.X.Max = lossPlot.X.Min, lossPlot.X.Max

	const w, h = 8 * vg.Inch, 6 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8), PadY: vg.Points(8)}
	plots := [][]*plot.Plot{{lossPlot}, {accPlot}}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	png := vgimg.PngCanvas{Canvas: img}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := png.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func addLine(p *plot.Plot, xs, ys []float64, c color.Color) error {
	if len(xs) != len(ys) {
		return fmt.Errorf("%d steps for %d values", len(xs), len(ys))
	}
	pts := make(plotter.XYs, len(xs))
	for i := range xs {
		pts[i].X, pts[i].Y = xs[i], ys[i]
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return err
	}
	line.Color = c
	line.Width = vg.Points(1.5)
	p.Add(line)
	if len(pts) <= 50 {
		// Few points (evaluations): mark each, so even a single one shows.
		dots, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		dots.Color = c
		dots.Radius = vg.Points(2.5)
		p.Add(dots)
	}
	return nil
}
