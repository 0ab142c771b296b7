using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace DitCache.Evaluation.Reports;

/// <summary>
/// One data point of a <see cref="SvgPlot"/>; <paramref name="Capped"/> points sit in the band above the axis, and
/// <paramref name="Tooltip"/> shows on hover in a browser (for points too crowded to label apart).
/// </summary>
internal sealed record PlotPoint(double X, double Y, string? Label = null, bool Capped = false, string? Tooltip = null);

/// <summary>A horizontal reference line (dashed), listed in the legend with its value.</summary>
internal sealed record PlotRule(double Y, string Label, string Colour, string Dash);

/// <summary>A named series: one or more polylines (a gap between segments is a break in the data) with markers.</summary>
internal sealed class PlotSeries(string name, int style)
{
    /// <summary>Legend text.</summary>
    public string Name { get; } = name;

    /// <summary>Colour and marker index (<see cref="Svg.Colour"/>, <see cref="Svg.Marker"/>).</summary>
    public int Style { get; } = style;

    /// <summary>Runs of points joined by a line; every point gets a marker.</summary>
    public List<List<PlotPoint>> Segments { get; } = [];
}

/// <summary>
/// A 2-D line chart with markers: title and note, linear x, linear or log y, nice ticks with grid lines, optional
/// dashed reference lines, point labels placed greedily where they overlap nothing, and the legend outside the plot
/// on the right so it never covers data. Points with <see cref="PlotPoint.Capped"/> set (e.g. PSNR at its 100 dB cap)
/// are drawn in a band above the top of the y axis, labelled <see cref="CapLabel"/>.
/// </summary>
internal sealed class SvgPlot
{
    private const double Pad = 14; // px between the axes box and the outermost data

    public required string Title { get; init; }

    public string? Note { get; init; }

    public required string XLabel { get; init; }

    public required string YLabel { get; init; }

    public bool LogY { get; init; }

    /// <summary>Whether x ticks must be integers (step or block indices).</summary>
    public bool IntegerX { get; init; }

    /// <summary>An x value the axis must include (1× on a speedup axis).</summary>
    public double? XInclude { get; init; }

    /// <summary>Appended to x tick labels (e.g. ×).</summary>
    public string XSuffix { get; init; } = "";

    public string CapLabel { get; init; } = "cap";

    public double MarkerRadius { get; init; } = 5;

    public double LineWidth { get; init; } = 2;

    public double Width { get; init; } = 1120;

    /// <summary>Legend column width at least this (px), so charts shown one above the other share a plot width.</summary>
    public double MinLegendWidth { get; init; }

    public double Height { get; init; } = 560;

    public List<PlotSeries> Series { get; } = [];

    public List<PlotRule> Rules { get; } = [];

    public string Render()
    {
        const double TitleSize = 17, LabelSize = 14, TickSize = 12.5, LegendSize = 13, PointLabelSize = 12;
        // Defence in depth: callers drop NaN and infinite values, but a point that slipped through must not print
        // NaN into a coordinate, so it is dropped here too (and non-positive values on a log axis).
        bool Valid(PlotPoint p) => double.IsFinite(p.X) && (p.Capped || (double.IsFinite(p.Y) && (!LogY || p.Y > 0)));
        List<PlotRule> rules = [.. Rules.Where(r => double.IsFinite(r.Y) && (!LogY || r.Y > 0))];
        var series = new List<PlotSeries>();
        foreach (PlotSeries s in Series)
        {
            var clean = new PlotSeries(s.Name, s.Style);
            clean.Segments.AddRange(s.Segments.Select(g => g.Where(Valid).ToList()).Where(g => g.Count > 0));
            series.Add(clean); // kept when empty: the legend says "no data" rather than dropping the family
        }

        List<PlotPoint> all = [.. series.SelectMany(s => s.Segments.SelectMany(g => g))];
        bool anyCapped = all.Any(p => p.Capped);

        var legend = new List<(string Text, int Style, PlotRule? Rule)>();
        legend.AddRange(series.Select(s => (s.Segments.Count > 0 ? s.Name : s.Name + " (no data)", s.Style, (PlotRule?)null)));
        legend.AddRange(rules.Select(r => (r.Label, 0, (PlotRule?)r)));
        double legendWidth = Math.Max(MinLegendWidth, legend.Count == 0 ? 0 : legend.Max(l => Svg.TextWidth(l.Text, LegendSize)) + 52);

        double left = 78, right = Width - 28 - legendWidth, top = Note is null ? 50 : 72;
        double height = Math.Max(Height, top + 4 + (legend.Count * 22) + 16);      // a long legend stretches the chart
        double bottom = height - 62;
        StringBuilder sb = Svg.Open(Width, height, Title);
        Svg.Text(sb, left, 28, Title, $"font-size=\"{TitleSize}\" font-weight=\"600\"");
        if (Note is not null)
        {
            Svg.Text(sb, left, 50, Note, $"font-size=\"{TickSize}\" fill=\"{Svg.Muted}\"");
        }

        List<PlotPoint> values = [.. all.Where(p => !p.Capped)];
        List<double> xs = [.. all.Select(p => p.X)];

        // A rule far below the data (the real-data Frechet floor under model samples) would squash the data into a
        // sliver; it goes to a band under a break in the y axis instead, like capped points above it.
        List<PlotRule> low = [];
        if (!LogY && values.Count > 0)
        {
            double dMin = values.Min(p => p.Y), dMax = values.Max(p => p.Y);
            double span = Math.Max(dMax - dMin, 0.1 * Math.Abs(dMax) + 1e-9);
            low = [.. rules.Where(r => r.Y < dMin - span)];
        }

        List<double> ys = [.. values.Select(p => p.Y).Concat(rules.Except(low).Select(r => r.Y))];
        if (XInclude is double xi)
        {
            xs.Add(xi);
        }

        if (xs.Count == 0)
        {
            Svg.Text(sb, (left + right) / 2, (top + bottom) / 2, "no data", $"font-size=\"{LabelSize}\" text-anchor=\"middle\" fill=\"{Svg.Muted}\"");
            return sb.Append("</svg>\n").ToString();
        }

        // x axis
        (double xLo, double xHi, double xStep) = Svg.NiceAxis(xs.Min(), xs.Max());
        if (IntegerX)
        {
            xStep = Math.Max(1, Math.Round(xStep));
            xLo = Math.Floor(xs.Min() / xStep) * xStep;
            xHi = Math.Max(xLo + xStep, Math.Ceiling(xs.Max() / xStep) * xStep);
        }

        double Px(double x) => left + Pad + ((x - xLo) / (xHi - xLo) * (right - left - (2 * Pad)));

        // y axis (log: decades); the capped band takes the top 34 px when used
        const double Band = 34;
        double yTop = top + Pad + (anyCapped ? Band : 0), yBottom = bottom - Pad - (low.Count > 0 ? Band : 0);
        double yLo, yHi, yStep;
        if (ys.Count == 0)
        {
            ys.Add(LogY ? 1 : 0);
        }

        if (LogY)
        {
            yLo = Math.Floor(Math.Log10(ys.Min()) + 1e-9);
            yHi = Math.Ceiling(Math.Log10(ys.Max()) - 1e-9);
            if (yHi <= yLo)
            {
                yHi = yLo + 1;
            }

            yStep = 1;
        }
        else
        {
            (yLo, yHi, yStep) = Svg.NiceAxis(ys.Min(), ys.Max(), 6);
        }

        double Py(double y)
        {
            double v = LogY ? Math.Log10(y) : y;
            return yBottom - ((v - yLo) / (yHi - yLo) * (yBottom - yTop));
        }

        double PyPoint(PlotPoint p) => p.Capped ? top + 18 : Py(p.Y);

        // grid, ticks, tick labels
        string tickText = $"font-size=\"{TickSize}\" fill=\"{Svg.Muted}\"";
        for (double t = xLo; t <= xHi + (xStep * 1e-6); t += xStep)
        {
            double x = Px(t);
            Svg.Line(sb, x, top, x, bottom, Svg.Grid);
            Svg.Line(sb, x, bottom, x, bottom + 5, Svg.Ink);
            Svg.Text(sb, x, bottom + 20, Svg.TickLabel(t, xStep) + XSuffix, tickText + " text-anchor=\"middle\"");
        }

        if (LogY)
        {
            double decades = yHi - yLo;
            for (int k = (int)yLo; k <= (int)yHi; k++)
            {
                double y = Py(Math.Pow(10, k));
                Svg.Line(sb, left, y, right, y, "#d0d0d0");
                Svg.Line(sb, left - 5, y, left, y, Svg.Ink);
                Svg.Text(sb, left - 9, y + 4.5, Svg.DecadeLabel(k), tickText + " text-anchor=\"end\"");
                if (k == (int)yHi)
                {
                    break;
                }

                for (int m = 2; m <= 9; m++)
                {
                    double v = m * Math.Pow(10, k), ym = Py(v);
                    Svg.Line(sb, left, ym, right, ym, "#f0f0f0");
                    Svg.Line(sb, left - 3, ym, left, ym, Svg.Muted);
                    if (decades <= 2 && m is 2 or 5)
                    {
                        Svg.Text(sb, left - 9, ym + 4.5, v.ToString("0.#####", CultureInfo.InvariantCulture), tickText + " text-anchor=\"end\"");
                    }
                }
            }
        }
        else
        {
            for (double t = yLo; t <= yHi + (yStep * 1e-6); t += yStep)
            {
                double y = Py(t);
                Svg.Line(sb, left, y, right, y, Svg.Grid);
                Svg.Line(sb, left - 5, y, left, y, Svg.Ink);
                Svg.Text(sb, left - 9, y + 4.5, Svg.TickLabel(t, yStep), tickText + " text-anchor=\"end\"");
            }
        }

        double RuleY(PlotRule rule)
        {
            int i = low.IndexOf(rule);
            return i < 0 ? Py(rule.Y) : bottom - (Band / 2) + (i * 6);
        }

        if (low.Count > 0)
        {
            double yb = bottom - (Band / 2);
            Svg.Line(sb, left, bottom - Band, right, bottom - Band, "#b0b0b0", 1, "stroke-dasharray=\"2 3\"");
            AxisBreak(sb, left, bottom - Band);
            Svg.Line(sb, left - 5, yb, left, yb, Svg.Ink);
            Svg.Text(sb, left - 9, yb + 4.5, low[0].Y.ToString("0.0", CultureInfo.InvariantCulture), tickText + " text-anchor=\"end\"");
        }

        if (anyCapped)
        {
            double yc = top + 18;
            Svg.Line(sb, left, top + Band, right, top + Band, "#b0b0b0", 1, "stroke-dasharray=\"2 3\"");
            AxisBreak(sb, left, top + Band);
            Svg.Line(sb, left - 5, yc, left, yc, Svg.Ink);
            Svg.Text(sb, left - 9, yc + 4.5, CapLabel, tickText + " text-anchor=\"end\"");
        }

        sb.Append("<rect x=\"").Append(Svg.Num(left)).Append("\" y=\"").Append(Svg.Num(top)).Append("\" width=\"").Append(Svg.Num(right - left))
          .Append("\" height=\"").Append(Svg.Num(bottom - top)).Append("\" fill=\"none\" stroke=\"").Append(Svg.Ink).Append("\"/>\n");
        Svg.Text(sb, (left + right) / 2, height - 18, XLabel, $"font-size=\"{LabelSize}\" text-anchor=\"middle\"");
        sb.Append("<text transform=\"translate(").Append(Svg.Num(22)).Append(',').Append(Svg.Num((top + bottom) / 2))
          .Append(") rotate(-90)\" font-size=\"").Append(Svg.Num(LabelSize)).Append("\" text-anchor=\"middle\">")
          .Append(Svg.Escape(YLabel)).Append("</text>\n");

        // reference lines
        var obstacles = new List<(double X0, double Y0, double X1, double Y1, double Weight)>();
        foreach (PlotRule rule in rules)
        {
            double y = RuleY(rule);
            Svg.Line(sb, left, y, right, y, rule.Colour, 1.5, $"stroke-dasharray=\"{rule.Dash}\"");
            obstacles.Add((left, y - 1.5, right, y + 1.5, 0.5));
        }

        // series: lines first, then markers on top
        foreach (PlotSeries s in series)
        {
            foreach (List<PlotPoint> seg in s.Segments.Where(g => g.Count > 1))
            {
                Svg.Polyline(sb, seg.Select(p => (Px(p.X), PyPoint(p))), Svg.Colour(s.Style), LineWidth, "opacity=\"0.85\"");
                for (int i = 1; i < seg.Count; i++)
                {
                    // the line as a chain of small boxes, so labels prefer not to sit on it
                    double ax = Px(seg[i - 1].X), ay = PyPoint(seg[i - 1]), bx = Px(seg[i].X), by = PyPoint(seg[i]);
                    int n = Math.Max(1, (int)(Math.Sqrt(((bx - ax) * (bx - ax)) + ((by - ay) * (by - ay))) / 4));
                    for (int k = 0; k <= n; k++)
                    {
                        double cx = ax + ((bx - ax) * k / n), cy = ay + ((by - ay) * k / n);
                        obstacles.Add((cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5, 0.5));
                    }
                }
            }
        }
        foreach (PlotSeries s in series)
        {
            foreach (PlotPoint p in s.Segments.SelectMany(g => g))
            {
                double x = Px(p.X), y = PyPoint(p);
                if (p.Tooltip is not null)
                {
                    sb.Append("<g><title>").Append(Svg.Escape(p.Tooltip)).Append("</title>\n");
                }

                Svg.Marker(sb, x, y, s.Style, MarkerRadius);
                if (p.Tooltip is not null)
                {
                    sb.Append("</g>\n");
                }

                obstacles.Add((x - MarkerRadius - 1, y - MarkerRadius - 1, x + MarkerRadius + 1, y + MarkerRadius + 1, 4));
            }
        }

        // point labels: the first candidate position that overlaps no marker, label or border; else the least bad
        string labelAttr = $"font-size=\"{PointLabelSize}\" stroke=\"#ffffff\" stroke-width=\"3\" paint-order=\"stroke\" stroke-linejoin=\"round\"";
        foreach (PlotSeries s in series)
        {
            foreach (PlotPoint p in s.Segments.SelectMany(g => g).Where(p => !string.IsNullOrEmpty(p.Label)))
            {
                double x = Px(p.X), y = PyPoint(p), w = Svg.TextWidth(p.Label!, PointLabelSize), h = PointLabelSize;
                var candidates = new List<(double X, double Y)>();
                foreach (double gap in new[] { MarkerRadius + 3, MarkerRadius + 12 })
                {
                    candidates.AddRange(
                    [
                        (x + gap, y - (h / 2)), (x + gap - 2, y - h - gap + 4), (x + gap - 2, y + gap - 4), (x - gap - w, y - (h / 2)),
                        (x - (w / 2), y - gap - h), (x - (w / 2), y + gap), (x - gap - w + 2, y - h - gap + 4), (x - gap - w + 2, y + gap - 4),
                    ]);
                }

                (double X, double Y) best = candidates[0];
                double bestCost = double.MaxValue;
                for (int c = 0; c < candidates.Count; c++)
                {
                    (double cx, double cy) = candidates[c];
                    double cost = c < 8 ? 0 : 0.15 * w * h; // the outer ring only when the inner one is crowded
                    foreach ((double x0, double y0, double x1, double y1, double weight) in obstacles)
                    {
                        cost += weight * Overlap(cx, cy, cx + w, cy + h, x0, y0, x1, y1);
                    }

                    if (cx < left || cx + w > right || cy < top || cy + h > bottom)
                    {
                        cost += 10 * w * h;
                    }

                    if (cost < bestCost - 1e-9)
                    {
                        bestCost = cost;
                        best = (cx, cy);
                    }

                    if (cost == 0)
                    {
                        break;
                    }
                }

                obstacles.Add((best.X - 4, best.Y - 1, best.X + w + 4, best.Y + h + 1, 4));
                Svg.Text(sb, best.X, best.Y + h - 2, p.Label!, labelAttr + $" fill=\"{Svg.Colour(s.Style)}\"");
            }
        }

        // legend, outside the plot on the right
        double lx = right + 20, ly = top + 4;
        for (int i = 0; i < legend.Count; i++)
        {
            (string text, int style, PlotRule? rule) = legend[i];
            double y = ly + (i * 22) + 10;
            if (rule is null && text.EndsWith(" (no data)", StringComparison.Ordinal))
            {
                Svg.Text(sb, lx + 34, y + 4.5, text, $"font-size=\"{LegendSize}\" fill=\"{Svg.Muted}\"");
                continue;
            }

            if (rule is null)
            {
                Svg.Line(sb, lx, y, lx + 26, y, Svg.Colour(style), LineWidth);
                Svg.Marker(sb, lx + 13, y, style, MarkerRadius);
            }
            else
            {
                Svg.Line(sb, lx, y, lx + 26, y, rule.Colour, 1.5, $"stroke-dasharray=\"{rule.Dash}\"");
            }

            Svg.Text(sb, lx + 34, y + 4.5, text, $"font-size=\"{LegendSize}\"");
        }

        return sb.Append("</svg>\n").ToString();
    }

    /// <summary>Two slanted strokes across the y axis: the scale is not continuous here.</summary>
    private static void AxisBreak(StringBuilder sb, double x, double y)
    {
        sb.Append("<rect x=\"").Append(Svg.Num(x - 6)).Append("\" y=\"").Append(Svg.Num(y - 3)).Append("\" width=\"12\" height=\"6\" fill=\"#ffffff\"/>\n");
        Svg.Line(sb, x - 6, y + 1, x + 6, y - 5, Svg.Ink);
        Svg.Line(sb, x - 6, y + 5, x + 6, y - 1, Svg.Ink);
    }

    private static double Overlap(double ax0, double ay0, double ax1, double ay1, double bx0, double by0, double bx1, double by1)
    {
        double w = Math.Min(ax1, bx1) - Math.Max(ax0, bx0), h = Math.Min(ay1, by1) - Math.Max(ay0, by0);
        return w > 0 && h > 0 ? w * h : 0;
    }
}
