using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using DitCache.Evaluation.Bench;
using DitCache.Tensors;

namespace DitCache.Evaluation.Reports;

/// <summary>
/// Turns <see cref="BenchResults"/> into what <c>ditcache bench</c> writes: a GitHub Markdown table, a CSV, SVG
/// charts (quality against FLOPs speedup, per-step timelines, shadow forecast errors), one self-contained HTML page
/// and a PNG grid of the sample strips. Pure string and byte building in the invariant culture; nothing here touches
/// the file system. Tables and CSV list the entries in plan order.
/// </summary>
public static partial class BenchReport
{
    /// <summary>The rule for reading the numbers, printed above every table.</summary>
    public const string CompareAtEqualFullSteps =
        "Compare methods at equal numbers of full (computed) steps: a cache that computes k of N steps competes with " +
        "plain sampling at k steps, not only with the N-step reference.";

    /// <summary>PSNR at or above this (dB) means identical images: the metric's cap (docs/methods.md §9.2).</summary>
    internal const double PsnrCap = 100;

    private static readonly CultureInfo s_inv = CultureInfo.InvariantCulture;

    private static readonly string[] s_columns =
    [
        "method", "steps", "cfg", "full steps", "FLOPs speedup", "wall speedup", "median s", "PSNR (dB)", "SSIM",
        "rel. L2", "FD", "accuracy (%)", "cache MiB",
    ];

    private static readonly string[] s_csvColumns =
    [
        "key", "cache", "steps", "cfg", "family", "label", "computed_steps", "flops", "reference_flops", "flops_speedup",
        "seconds_median", "seconds", "speedup", "psnr", "ssim", "rel_l2", "fd", "accuracy", "cache_bytes", "timeline",
    ];

    /// <summary>
    /// A GitHub Markdown report: the settings line, the real-data Frechet floors, the equal-full-steps rule, then one
    /// table row per entry in plan order (method, steps, cfg, full steps, FLOPs and wall-clock speedups, median
    /// seconds, PSNR, SSIM, relative L2, Frechet distance, accuracy, cache MiB). The reference's PSNR reads "ref".
    /// </summary>
    public static string Markdown(BenchResults r)
    {
        var sb = new StringBuilder();
        sb.Append(SettingsText(r)).Append("\n\n");
        sb.Append(FloorsText(r)).Append("\n\n");
        sb.Append(CompareAtEqualFullSteps).Append("\n\n");
        sb.Append("| ").Append(string.Join(" | ", s_columns)).Append(" |\n");
        sb.Append("|:---|").Append(string.Concat(Enumerable.Repeat("---:|", s_columns.Length - 1))).Append('\n');
        foreach (BenchEntry e in r.Entries)
        {
            sb.Append("| ").Append(string.Join(" | ", Cells(e).Select(MarkdownCell))).Append(" |\n");
        }

        return sb.ToString();
    }

    /// <summary>
    /// The results as CSV (RFC 4180 quoting: a field holding a comma, quote or line break is quoted, quotes doubled;
    /// lines end with LF). Header <c>key, cache, steps, cfg, family, label, computed_steps, flops, reference_flops,
    /// flops_speedup, seconds_median, seconds, speedup, psnr, ssim, rel_l2, fd, accuracy, cache_bytes, timeline</c>;
    /// <c>seconds</c> lists every repeat joined by ';'. Numbers round-trip; non-finite ones read <c>nan</c>,
    /// <c>inf</c>, <c>-inf</c> (as Python and pandas parse them); accuracy is a fraction, not a percentage.
    /// </summary>
    public static string Csv(BenchResults r)
    {
        var sb = new StringBuilder();
        sb.Append(string.Join(",", s_csvColumns)).Append('\n');
        foreach (BenchEntry e in r.Entries)
        {
            BenchConfig c = e.Config;
            string[] fields =
            [
                c.Key, c.Cache, c.Steps.ToString(s_inv), c.Cfg.ToString(s_inv), c.Family, c.Label,
                e.ComputedSteps.ToString(s_inv), CsvNumber(e.Flops), CsvNumber(e.ReferenceFlops), CsvNumber(e.FlopsSpeedup),
                CsvNumber(e.MedianSeconds), string.Join(";", e.Seconds.Select(CsvNumber)), CsvNumber(e.Speedup),
                CsvNumber(e.Psnr), CsvNumber(e.Ssim), CsvNumber(e.RelativeL2), CsvNumber(e.FrechetDistance),
                CsvNumber(e.Accuracy), e.CacheBytes.ToString(s_inv), e.Timeline,
            ];
            sb.Append(string.Join(",", fields.Select(CsvField))).Append('\n');
        }

        return sb.ToString();
    }

    /// <summary>
    /// One self-contained HTML page (inline CSS, inline SVG, images as data URIs, no external resources): title,
    /// settings, floors, the table of <see cref="Markdown"/>, the charts, and a grid of each entry's sample strip under
    /// the class names of <see cref="BenchResults.StripClasses"/>.
    /// </summary>
    public static string Html(BenchResults r)
    {
        var h = new StringBuilder();
        string title = "ditcache bench: " + r.Model;
        h.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
         .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
         .Append("<title>").Append(Svg.Escape(title)).Append("</title>\n<style>\n").Append(HtmlStyle).Append("</style>\n</head>\n<body>\n");
        h.Append("<h1>").Append(Svg.Escape(title)).Append("</h1>\n");
        h.Append("<p class=\"settings\">").Append(Svg.Escape(SettingsText(r))).Append("</p>\n");
        h.Append("<p>").Append(Svg.Escape(FloorsText(r))).Append("</p>\n");
        h.Append("<p class=\"rule\">").Append(Svg.Escape(CompareAtEqualFullSteps)).Append("</p>\n");
        if (r.Command.Length > 0)
        {
            h.Append("<pre>").Append(Svg.Escape(r.Command)).Append("</pre>\n");
        }

        // the table, with each method's chart colour beside its label
        Dictionary<string, int> styles = FamilyStyles(r);
        HashSet<string> charted = [.. r.Entries.Where(e => !e.Config.IsReference).Select(FamilyOf)];
        h.Append("<h2>Results</h2>\n<div class=\"scroll\"><table class=\"results\">\n<thead><tr>");
        for (int i = 0; i < s_columns.Length; i++)
        {
            h.Append(i == 0 ? "<th class=\"l\">" : "<th>").Append(Svg.Escape(s_columns[i])).Append("</th>");
        }

        h.Append("</tr></thead>\n<tbody>\n");
        foreach (BenchEntry e in r.Entries)
        {
            string[] cells = Cells(e);
            h.Append(e.Config.IsReference ? "<tr class=\"ref\">" : "<tr>");
            // references are not charted as points (a dashed line at most), so they get no chart colour
            string swatch = charted.Contains(FamilyOf(e)) ? "background:" + Svg.Colour(styles[FamilyOf(e)]) : "border:1px solid #999";
            h.Append("<td class=\"l\"><span class=\"swatch\" style=\"").Append(swatch).Append("\"></span>")
             .Append(Svg.Escape(cells[0])).Append("</td>");
            for (int i = 1; i < cells.Length; i++)
            {
                h.Append("<td>").Append(Svg.Escape(cells[i])).Append("</td>");
            }

            h.Append("</tr>\n");
        }

        h.Append("</tbody>\n</table></div>\n");

        h.Append("<h2>Quality against compute</h2>\n<div class=\"chart\">\n").Append(FrontierPsnrSvg(r)).Append("</div>\n");
        h.Append("<div class=\"chart\">\n").Append(FrontierFdSvg(r)).Append("</div>\n");
        h.Append("<h2>Which steps computed</h2>\n<div class=\"chart\">\n").Append(TimelineSvg(r)).Append("</div>\n");
        string? shadow = ShadowSvg(r), shadowBlocks = ShadowPerBlockSvg(r);
        if (shadow is not null || shadowBlocks is not null)
        {
            h.Append("<h2>Forecast error (shadow runs)</h2>\n");
            foreach (string? svg in new[] { shadow, shadowBlocks })
            {
                if (svg is not null)
                {
                    h.Append("<div class=\"chart\">\n").Append(svg).Append("</div>\n");
                }
            }
        }

        AppendImageGrid(h, r);
        h.Append("</body>\n</html>\n");
        return h.ToString();
    }

    /// <summary>
    /// One PNG of the sample strips: a row per entry of <paramref name="entries"/> (default: all, in plan order), a
    /// column per class of <see cref="BenchResults.StripClasses"/>, 2-pixel padding, no labels (for the README).
    /// </summary>
    /// <exception cref="ArgumentException">There are no entries, or a strip does not hold one square image per strip class.</exception>
    public static byte[] GridPng(BenchResults r, IReadOnlyList<BenchEntry>? entries = null)
    {
        entries ??= r.Entries;
        if (entries.Count == 0)
        {
            throw new ArgumentException("no entries to draw", nameof(entries));
        }

        int k = r.StripClasses.Length;
        (int c, int side) = StripImageShape(r, entries[0]);
        int per = c * side * side;
        float[] data = new float[entries.Count * k * per];
        for (int i = 0; i < entries.Count; i++)
        {
            BenchEntry e = entries[i];
            if (e.Strip.Length != k * per)
            {
                throw new ArgumentException(
                    $"entry '{e.Config.Key}': strip holds {e.Strip.Length} floats, the first entry's images need {k}x{per}", nameof(entries));
            }

            Array.Copy(e.Strip, 0, data, i * k * per, k * per);
        }

        return Png.EncodeGrid(new Tensor(data, entries.Count * k, c, side, side), k, 2);
    }

    /// <summary>The 13 table cells of an entry, formatted for reading (shared by Markdown and HTML).</summary>
    private static string[] Cells(BenchEntry e)
    {
        BenchConfig c = e.Config;
        string psnr = c.IsReference || double.IsPositiveInfinity(e.Psnr) ? "ref"
            : e.Psnr >= PsnrCap ? "identical"
            : Fixed(e.Psnr, "0.00");
        return
        [
            c.Label.Length > 0 ? c.Label : c.Cache,
            c.Steps.ToString(s_inv),
            c.Cfg.ToString(s_inv),
            e.FullStepsPerImage is double perImage ? string.Create(s_inv, $"{perImage:0.0} per image") : e.ComputedSteps.ToString(s_inv),
            Times(e.FlopsSpeedup),
            Times(e.Speedup),
            Seconds(e.MedianSeconds),
            psnr,
            Fixed(e.Ssim, "0.0000"),
            Fixed(e.RelativeL2, "0.0000"),
            Fixed(e.FrechetDistance, "0.0"),
            Fixed(100 * e.Accuracy, "0.0"),
            Fixed(e.CacheBytes / (1024.0 * 1024.0), "0.00"),
        ];
    }

    private static string SettingsText(BenchResults r) => string.Create(s_inv,
        $"Model {r.Model} · {r.Samples} samples · {r.Repeats} repeats · seed {r.Seed} · sampler {r.Sampler} · {r.Threads} threads · gemm {r.Gemm} · machine {r.Machine}");

    private static string FloorsText(BenchResults r) => string.Create(s_inv,
        $"Real-data floors of the Frechet distance: {Fixed(r.FloorFrechetDistance, "0.00")} between the two halves of the test set, {Fixed(r.MatchedFloorFrechetDistance, "0.00")} for real training images at the same sample count (matched floor).");

    /// <summary>A table cell: pipes escaped, and angle brackets as entities so GitHub does not read them as HTML.</summary>
    private static string MarkdownCell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal)
        .Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);

    private static string Fixed(double v, string format) => double.IsFinite(v) ? v.ToString(format, s_inv) : "—";

    private static string Times(double v) => double.IsFinite(v) && v > 0 ? v.ToString("0.00", s_inv) + "×" : "—";

    private static string Seconds(double v) => !double.IsFinite(v) ? "—"
        : v >= 100 ? v.ToString("0", s_inv)
        : v >= 10 ? v.ToString("0.0", s_inv)
        : v.ToString("0.00", s_inv);

    private static string CsvNumber(double v) => double.IsNaN(v) ? "nan"
        : double.IsPositiveInfinity(v) ? "inf"
        : double.IsNegativeInfinity(v) ? "-inf"
        : v.ToString("R", s_inv);

    private static string CsvField(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    /// <summary>Whether every entry's strip holds drawable images (1 or 3 channels, square), so <see cref="GridPng"/> can draw them.</summary>
    public static bool HasImageStrips(BenchResults r, IReadOnlyList<BenchEntry>? entries = null)
    {
        ArgumentNullException.ThrowIfNull(r);
        return (entries ?? r.Entries).All(e => TryStripImageShape(r, e) is not null);
    }

    /// <summary>Channels and side of one strip image, inferred from the strip length and the class count.</summary>
    private static (int Channels, int Side) StripImageShape(BenchResults r, BenchEntry e)
    {
        int k = r.StripClasses.Length;
        if (k == 0 || e.Strip.Length == 0 || e.Strip.Length % k != 0)
        {
            throw new ArgumentException(
                $"entry '{e.Config.Key}': strip of {e.Strip.Length} floats does not hold one image per strip class ({k})", nameof(r));
        }

        return TryStripImageShape(r, e)
            ?? throw new ArgumentException($"entry '{e.Config.Key}': strip images of {e.Strip.Length / k} floats are not square (C, H, H) with C 1 or 3", nameof(r));
    }

    /// <summary>As <see cref="StripImageShape"/>, null when the strip does not hold drawable images.</summary>
    private static (int Channels, int Side)? TryStripImageShape(BenchResults r, BenchEntry e)
    {
        int k = r.StripClasses.Length;
        if (k == 0 || e.Strip.Length == 0 || e.Strip.Length % k != 0)
        {
            return null;
        }

        int per = e.Strip.Length / k;
        if (r.ImageShape is [int channels, int height, int width])
        {
            return channels is 1 or 3 && height == width && channels * height * width == per ? (channels, height) : null;
        }

        for (int c = 1; c <= 3; c += 2)
        {
            int side = (int)Math.Round(Math.Sqrt(per / (double)c));
            if (c * side * side == per)
            {
                return (c, side);
            }
        }

        return null;
    }

    private static void AppendImageGrid(StringBuilder h, BenchResults r)
    {
        int k = r.StripClasses.Length;
        h.Append("<h2>Samples</h2>\n<p class=\"note\">The first sample of each class, same seed for every method.</p>\n");
        h.Append("<div class=\"scroll\"><table class=\"grid\">\n<thead><tr><th class=\"l\">method</th>");
        for (int i = 0; i < k; i++)
        {
            string name = r.ClassNames is { } names && i < names.Length ? names[i] : r.StripClasses[i].ToString(s_inv);
            h.Append("<th>").Append(Svg.Escape(name)).Append("</th>");
        }

        h.Append("</tr></thead>\n<tbody>\n");
        foreach (BenchEntry e in r.Entries)
        {
            h.Append(e.Config.IsReference ? "<tr class=\"ref\">" : "<tr>");
            h.Append("<td class=\"l\">").Append(Svg.Escape(e.Config.Label.Length > 0 ? e.Config.Label : e.Config.Cache)).Append("</td>");
            (int c, int side) shape;
            try
            {
                shape = StripImageShape(r, e);
            }
            catch (ArgumentException)
            {
                h.Append("<td colspan=\"").Append(Math.Max(1, k).ToString(s_inv)).Append("\" class=\"l note\">no images</td></tr>\n");
                continue;
            }

            int per = shape.c * shape.side * shape.side;
            for (int i = 0; i < k; i++)
            {
                float[] one = e.Strip.AsSpan(i * per, per).ToArray();
                byte[] png = Png.EncodeGrid(new Tensor(one, 1, shape.c, shape.side, shape.side), 1, 0);
                h.Append("<td><img alt=\"\" src=\"data:image/png;base64,").Append(Convert.ToBase64String(png)).Append("\"></td>");
            }

            h.Append("</tr>\n");
        }

        h.Append("</tbody>\n</table></div>\n");
    }

    private const string HtmlStyle = """
        body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
               color: #222; max-width: 1360px; margin: 24px auto; padding: 0 20px; line-height: 1.45; font-size: 15px; }
        h1 { font-size: 26px; margin-bottom: 8px; }
        h2 { font-size: 20px; margin-top: 36px; padding-bottom: 4px; border-bottom: 1px solid #ddd; }
        p.settings { color: #444; }
        p.rule { font-weight: 600; }
        p.note, td.note { color: #666; font-size: 13px; }
        pre { background: #f6f8fa; padding: 8px 12px; overflow-x: auto; font-size: 13px; border-radius: 4px; }
        div.scroll { overflow-x: auto; }
        table.results { border-collapse: collapse; font-size: 14px; font-variant-numeric: tabular-nums; }
        table.results th, table.results td { padding: 5px 9px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
        table.results th { background: #f3f3f3; border-bottom: 2px solid #ccc; }
        table.results tbody tr:hover { background: #fafae6; }
        th.l, td.l { text-align: left !important; }
        tr.ref td { font-weight: 600; background: #eef3f9; }
        span.swatch { display: inline-block; width: 11px; height: 11px; margin-right: 7px; border-radius: 2px; vertical-align: -1px; }
        div.chart svg { display: block; max-width: 100%; height: auto; margin: 16px 0; }
        table.grid { border-collapse: collapse; }
        table.grid th { font-size: 13px; font-weight: 600; padding: 4px 2px; text-align: center; width: 88px; }
        table.grid td { padding: 2px; }
        table.grid td.l { font-size: 14px; padding-right: 12px; white-space: nowrap; }
        table.grid img { display: block; width: 84px; height: 84px; image-rendering: pixelated; }

        """;
}
