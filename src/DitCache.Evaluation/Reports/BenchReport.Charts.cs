using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using DitCache.Evaluation.Bench;

namespace DitCache.Evaluation.Reports;

/// <summary>The SVG charts of <see cref="BenchReport"/>.</summary>
public static partial class BenchReport
{
    /// <summary>
    /// PSNR against the full-compute images (y) over FLOPs speedup (x): one line with markers per method family,
    /// points sorted by speedup and labelled by their cache parameters. References are left out (their PSNR is
    /// infinite); a point at the 100 dB cap (identical images) sits in a band above the axis; NaN points are dropped.
    /// A complete standalone <c>&lt;svg&gt;</c> document.
    /// </summary>
    public static string FrontierPsnrSvg(BenchResults r)
    {
        var plot = new SvgPlot
        {
            Title = "Quality against compute: PSNR vs the full-compute reference",
            Note = FrontierNote(r),
            XLabel = "FLOPs speedup over the reference",
            YLabel = "PSNR (dB), higher is better",
            XInclude = 1,
            XSuffix = "×",
            CapLabel = "≥100",
            MinLegendWidth = LegendWidth,
        };
        plot.Series.AddRange(FamilySeries(r, e => e.Psnr, capAt: PsnrCap));
        return plot.Render();
    }

    /// <summary>
    /// Frechet distance of the classifier features (y, lower is better) over FLOPs speedup (x), one line per method
    /// family, with dashed lines at the matched real-data floor and at each reference's distance. A complete
    /// standalone <c>&lt;svg&gt;</c> document.
    /// </summary>
    public static string FrontierFdSvg(BenchResults r)
    {
        // A diverged configuration (FD in the thousands) would squash every other point into a sliver: distances
        // above three times the typical one go to the off-scale band at the top, with their value in the tooltip.
        double[] fds = [.. r.Entries.Select(e => e.FrechetDistance).Where(double.IsFinite).Order()];
        double offScale = fds.Length == 0 ? double.PositiveInfinity : 3 * Math.Max(fds[fds.Length / 2], fds[0]);
        var plot = new SvgPlot
        {
            CapLabel = string.Create(s_inv, $"≥{offScale:0}"),
            Title = "Quality against compute: Frechet distance to Fashion-MNIST",
            Note = FrontierNote(r),
            XLabel = "FLOPs speedup over the reference",
            YLabel = "Frechet distance, lower is better",
            XInclude = 1,
            XSuffix = "×",
            MinLegendWidth = LegendWidth,
        };
        plot.Series.AddRange(FamilySeries(r, e => e.FrechetDistance, capAt: offScale));
        bool manyCfg = r.Entries.Select(e => e.Config.Cfg).Distinct().Count() > 1;
        foreach (BenchEntry e in r.Entries.Where(e => e.Config.IsReference && double.IsFinite(e.FrechetDistance)))
        {
            string which = manyCfg ? string.Create(s_inv, $"reference cfg {e.Config.Cfg}") : "reference";
            plot.Rules.Add(new PlotRule(e.FrechetDistance, string.Create(s_inv, $"{which}: {e.FrechetDistance:0.0}"), "#000000", "7 4 2 4"));
        }

        if (double.IsFinite(r.MatchedFloorFrechetDistance))
        {
            plot.Rules.Add(new PlotRule(
                r.MatchedFloorFrechetDistance, string.Create(s_inv, $"real data (matched floor): {r.MatchedFloorFrechetDistance:0.0}"), "#777777", "5 4"));
        }

        return plot.Render();
    }

    /// <summary>
    /// Which steps each entry computed: one row per entry (label on the left, computed/total on the right), one cell
    /// per sampling step coloured by its <see cref="BenchEntry.Timeline"/> letter (C computed, F forecast, S skipped,
    /// P partly computed), cells of the same width in every row so step counts compare. A standalone SVG document.
    /// </summary>
    public static string TimelineSvg(BenchResults r)
    {
        const double Width = 1120, RowHeight = 22, CellHeight = 16, Top = 108, LabelSize = 13;
        List<BenchEntry> entries = r.Entries;
        int maxSteps = Math.Max(1, entries.Count == 0 ? 1 : entries.Max(e => e.Timeline.Length));
        double labelWidth = Math.Clamp(entries.Count == 0 ? 0 : entries.Max(e => Svg.TextWidth(LabelOf(e), LabelSize)) + 20, 120, 380);
        const double CountWidth = 70;
        double cell = (Width - labelWidth - CountWidth - 20) / maxSteps;
        double gap = cell >= 6 ? 1.5 : 0;
        double height = Top + (entries.Count * RowHeight) + 24;

        StringBuilder sb = Svg.Open(Width, height, "Which steps computed");
        Svg.Text(sb, 20, 28, "Which steps computed", "font-size=\"17\" font-weight=\"600\"");

        // legend under the title
        double lx = 20;
        foreach ((char letter, string text) in s_timelineLegend)
        {
            Rect(sb, lx, 46, 16, 16, TimelineColour(letter));
            string label = $"{letter}  {text}";
            Svg.Text(sb, lx + 22, 59, label, "font-size=\"13\"");
            lx += 22 + Svg.TextWidth(label, 13) + 22;
        }

        // step axis above the rows (step 0 is the noisiest)
        double x0 = labelWidth;
        int tickEvery = maxSteps <= 30 ? 5 : maxSteps <= 120 ? 10 : 50;
        Svg.Text(sb, x0 - 10, Top - 14, "step", "font-size=\"12.5\" text-anchor=\"end\" fill=\"#555555\"");
        for (int s = 0; s < maxSteps; s += tickEvery)
        {
            double x = x0 + (s * cell) + (cell / 2);
            Svg.Line(sb, x, Top - 10, x, Top - 4, Svg.Ink);
            Svg.Text(sb, x, Top - 14, s.ToString(s_inv), "font-size=\"12.5\" text-anchor=\"middle\" fill=\"#555555\"");
        }

        Svg.Text(sb, Width - 20, Top - 14, "computed", "font-size=\"12.5\" text-anchor=\"end\" fill=\"#555555\"");
        for (int i = 0; i < entries.Count; i++)
        {
            BenchEntry e = entries[i];
            double y = Top + (i * RowHeight);
            if (i % 2 == 1)
            {
                Rect(sb, 0, y, Width, RowHeight, "#f4f4f4");
            }

            string weight = e.Config.IsReference ? " font-weight=\"600\"" : "";
            Svg.Text(sb, labelWidth - 10, y + (RowHeight / 2) + 4.5, LabelOf(e), $"font-size=\"{LabelSize}\" text-anchor=\"end\"{weight}");
            for (int s = 0; s < e.Timeline.Length; s++)
            {
                Rect(sb, x0 + (s * cell), y + ((RowHeight - CellHeight) / 2), cell - gap, CellHeight, TimelineColour(e.Timeline[s]));
            }

            string count = string.Create(s_inv, $"{e.ComputedSteps}/{e.Config.Steps}");
            Svg.Text(sb, Width - 20, y + (RowHeight / 2) + 4.5, count, $"font-size=\"{LabelSize}\" text-anchor=\"end\"");
        }

        if (entries.Count == 0)
        {
            Svg.Text(sb, Width / 2, Top + 10, "no entries", "font-size=\"14\" text-anchor=\"middle\" fill=\"#555555\"");
        }

        return sb.Append("</svg>\n").ToString();
    }

    /// <summary>
    /// From the shadow runs: the forecast's mean relative L2 error at each sampling step (log y), one line per entry
    /// with <see cref="BenchEntry.ShadowPerStep"/>; computed steps (NaN) break the line. Null when no entry has
    /// shadow data.
    /// </summary>
    public static string? ShadowSvg(BenchResults r)
    {
        var plot = new SvgPlot
        {
            Title = "Forecast error over sampling (shadow runs)",
            Note = "Mean relative L2 error of the forecast sites against computing them; gaps are steps where every block ran.",
            XLabel = "sampling step (0 = noisiest)",
            YLabel = "relative L2 error (log)",
            LogY = true,
            IntegerX = true,
            MarkerRadius = 3.5,
            LineWidth = 1.75,
            MinLegendWidth = LegendWidth,
        };
        Func<BenchEntry, int> style = ShadowStyles(r, e => e.ShadowPerStep is not null);
        foreach (BenchEntry e in r.Entries.Where(e => e.ShadowPerStep is not null))
        {
            var series = new PlotSeries(LabelOf(e), style(e));
            List<PlotPoint>? run = null;
            for (int s = 0; s < e.ShadowPerStep!.Length; s++)
            {
                double v = e.ShadowPerStep[s];
                if (double.IsFinite(v) && v > 0)
                {
                    if (run is null)
                    {
                        run = [];
                        series.Segments.Add(run);
                    }

                    run.Add(new PlotPoint(s, v));
                }
                else
                {
                    run = null;
                }
            }

            if (series.Segments.Count > 0)
            {
                plot.Series.Add(series);
            }
        }

        return plot.Series.Count == 0 ? null : plot.Render();
    }

    /// <summary>
    /// From the shadow runs: each block's mean relative L2 forecast error (log y), one line per entry with
    /// <see cref="BenchEntry.ShadowPerBlock"/>. Null when no entry has per-block shadow data.
    /// </summary>
    public static string? ShadowPerBlockSvg(BenchResults r)
    {
        var plot = new SvgPlot
        {
            Title = "Forecast error by block (shadow runs)",
            Note = "Mean relative L2 error over each block's forecast sites and steps.",
            XLabel = "block (0 = first after the embedding)",
            YLabel = "relative L2 error (log)",
            LogY = true,
            IntegerX = true,
            MarkerRadius = 4,
            LineWidth = 1.75,
            MinLegendWidth = LegendWidth,
        };
        Func<BenchEntry, int> style = ShadowStyles(r, e => e.ShadowPerBlock is not null);
        foreach (BenchEntry e in r.Entries.Where(e => e.ShadowPerBlock is not null))
        {
            var series = new PlotSeries(LabelOf(e), style(e));
            List<PlotPoint>? run = null;
            for (int b = 0; b < e.ShadowPerBlock!.Length; b++)
            {
                double v = e.ShadowPerBlock[b];
                if (double.IsFinite(v) && v > 0)
                {
                    if (run is null)
                    {
                        run = [];
                        series.Segments.Add(run);
                    }

                    run.Add(new PlotPoint(b, v));
                }
                else
                {
                    run = null;
                }
            }

            if (series.Segments.Count > 0)
            {
                plot.Series.Add(series);
            }
        }

        return plot.Series.Count == 0 ? null : plot.Render();
    }

    /// <summary>Legend column of every line chart, so the charts of one page share a plot width.</summary>
    private const double LegendWidth = 300;

    /// <summary>
    /// Style per shadow entry: its family's style (the frontier colour) when the shadow entries are all of different
    /// families, else one style per entry in order.
    /// </summary>
    private static Func<BenchEntry, int> ShadowStyles(BenchResults r, Func<BenchEntry, bool> has)
    {
        List<BenchEntry> shadow = [.. r.Entries.Where(has)];
        if (shadow.Select(FamilyOf).Distinct().Count() == shadow.Count)
        {
            Dictionary<string, int> styles = FamilyStyles(r);
            return e => styles[FamilyOf(e)];
        }

        return e => shadow.IndexOf(e);
    }

    private static readonly (char Letter, string Text)[] s_timelineLegend =
    [
        ('C', "computed (every block)"), ('F', "forecast"), ('S', "skipped (block stack reused)"), ('P', "partly computed"),
    ];

    private static string TimelineColour(char letter) => letter switch
    {
        'C' => "#08306B",  // dark blue
        'F' => "#9ECAE1",  // light blue
        'S' => "#E69F00",  // orange (Okabe-Ito)
        'P' => "#CC79A7",  // reddish purple (Okabe-Ito)
        _ => "#BDBDBD",
    };

    private static void Rect(StringBuilder sb, double x, double y, double w, double h, string fill)
    {
        sb.Append("<rect x=\"").Append(Svg.Num(x)).Append("\" y=\"").Append(Svg.Num(y)).Append("\" width=\"").Append(Svg.Num(Math.Max(0, w)))
          .Append("\" height=\"").Append(Svg.Num(h)).Append("\" fill=\"").Append(fill).Append("\"/>\n");
    }

    private static string LabelOf(BenchEntry e) => e.Config.Label.Length > 0 ? e.Config.Label : e.Config.Cache;

    /// <summary>The family an entry is charted under: <see cref="BenchConfig.Family"/>, else the accelerator name.</summary>
    private static string FamilyOf(BenchEntry e)
    {
        if (e.Config.Family.Length > 0)
        {
            return e.Config.Family;
        }

        int colon = e.Config.Cache.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? e.Config.Cache : e.Config.Cache[..colon];
    }

    /// <summary>
    /// Style (colour and marker) index per family, by first appearance in plan order, stable across charts. Families
    /// that are charted (those with non-reference entries) come first, so they get the most distinct colours.
    /// </summary>
    private static Dictionary<string, int> FamilyStyles(BenchResults r)
    {
        var styles = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (BenchEntry e in r.Entries.Where(e => !e.Config.IsReference).Concat(r.Entries.Where(e => e.Config.IsReference)))
        {
            styles.TryAdd(FamilyOf(e), styles.Count);
        }

        return styles;
    }

    /// <summary>A point's label: the cache parameters (<c>n=5</c>), or the step count for plain sampling.</summary>
    private static string PointLabel(BenchEntry e)
    {
        string cache = e.Config.Cache;
        int colon = cache.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0 && colon < cache.Length - 1)
        {
            return cache[(colon + 1)..];
        }

        return cache == "none" ? string.Create(s_inv, $"{e.Config.Steps} steps") : LabelOf(e);
    }

    private static string FrontierNote(BenchResults r)
    {
        IEnumerable<string> references = r.Entries.Where(e => e.Config.IsReference)
            .Select(e => string.Create(s_inv, $"{e.Config.Steps} steps at cfg {e.Config.Cfg}"));
        string refs = string.Join(", ", references.Distinct());
        return string.Create(s_inv, $"{r.Samples} samples, seed {r.Seed}; reference = full compute ({(refs.Length > 0 ? refs : "none in the results")}). Labels: cache parameters.");
    }

    /// <summary>
    /// Non-reference entries grouped by family (and by cfg when the results hold several), sorted by FLOPs speedup.
    /// Values at or above <paramref name="capAt"/> become capped points; NaN values and non-positive speedups are dropped.
    /// </summary>
    private static List<PlotSeries> FamilySeries(BenchResults r, Func<BenchEntry, double> value, double? capAt)
    {
        Dictionary<string, int> styles = FamilyStyles(r);
        bool manyCfg = r.Entries.Select(e => e.Config.Cfg).Distinct().Count() > 1;
        var series = new List<PlotSeries>();
        var byName = new Dictionary<string, List<PlotPoint>>(StringComparer.Ordinal);
        foreach (BenchEntry e in r.Entries.Where(e => !e.Config.IsReference))
        {
            string family = FamilyOf(e);
            string name = manyCfg ? string.Create(s_inv, $"{family} (cfg {e.Config.Cfg})") : family;
            if (!byName.TryGetValue(name, out List<PlotPoint>? points))
            {
                points = [];
                byName[name] = points;
                var s = new PlotSeries(name, manyCfg ? series.Count : styles[family]); // several cfgs: a style per (family, cfg)
                s.Segments.Add(points);
                series.Add(s);
            }

            double x = e.FlopsSpeedup, y = value(e);
            bool capped = capAt is double cap && y >= cap;
            if (!double.IsFinite(x) || x <= 0 || double.IsNaN(y) || (!capped && !double.IsFinite(y)))
            {
                continue;
            }

            string tip = string.Create(s_inv, $"{LabelOf(e)}: {x:0.00}× FLOPs, {e.ComputedSteps}/{e.Config.Steps} full steps, PSNR {e.Psnr:0.00} dB, FD {e.FrechetDistance:0.0}");
            points.Add(new PlotPoint(x, capped ? capAt!.Value : y, PointLabel(e), capped, tip));
        }

        foreach (List<PlotPoint> points in byName.Values)
        {
            points.Sort((a, b) => a.X.CompareTo(b.X));
            string[] labels = TrimCommonParameters([.. points.Select(p => p.Label ?? "")]);
            for (int i = 0; i < points.Count; i++)
            {
                points[i] = points[i] with { Label = points[i].Capped ? "↑" + labels[i] : labels[i] };
            }
        }

        return series;
    }

    /// <summary>
    /// Drops the comma-separated parameters every label of a series shares (<c>n=3,corrector=off</c> and
    /// <c>n=5,corrector=off</c> read <c>n=3</c> and <c>n=5</c>; the family name in the legend says the rest).
    /// </summary>
    private static string[] TrimCommonParameters(string[] labels)
    {
        if (labels.Length < 2)
        {
            return labels;
        }

        string[][] parts = [.. labels.Select(l => l.Split(','))];
        HashSet<string> common = [.. parts[0]];
        foreach (string[] p in parts.Skip(1))
        {
            common.IntersectWith(p);
        }

        return [.. parts.Select((p, i) => p.All(common.Contains) ? labels[i] : string.Join(",", p.Where(x => !common.Contains(x))))];
    }
}
