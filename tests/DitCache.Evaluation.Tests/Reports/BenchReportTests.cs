using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using DitCache.Evaluation.Bench;
using DitCache.Evaluation.Data;
using DitCache.Evaluation.Reports;
using Xunit;

namespace DitCache.Evaluation.Tests.Reports;

/// <summary>
/// The bench report writer on synthetic results: four families, a reference with infinite PSNR, an entry at the
/// 100 dB cap, NaN metrics, a cache spec with commas and a shadow run. Set DITCACHE_BENCH_REPORT_DIR to a folder to
/// also write the HTML, CSV, Markdown and SVGs of a realistic 20-entry result there (for looking at in a browser).
/// </summary>
public sealed class BenchReportTests
{
    private const int Columns = 20;
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void Csv_has_a_header_and_one_row_per_entry_with_every_row_the_same_width_and_commas_quoted()
    {
        BenchResults r = Small();
        string csv = BenchReport.Csv(r);
        List<string[]> rows = ParseCsv(csv);

        Assert.Equal(r.Entries.Count + 1, rows.Count);
        Assert.All(rows, row => Assert.Equal(Columns, row.Length));
        Assert.Equal("key", rows[0][0]);
        Assert.Equal("timeline", rows[0][^1]);
        Assert.Contains("\"taylorseer:n=4,o=2\"", csv, StringComparison.Ordinal);
        Assert.Contains("\"taylorseer:n=4,o=2|steps=50|cfg=1.5\"", csv, StringComparison.Ordinal);

        int cache = Array.IndexOf(rows[0], "cache"), psnr = Array.IndexOf(rows[0], "psnr"), seconds = Array.IndexOf(rows[0], "seconds");
        int fd = Array.IndexOf(rows[0], "fd"), timeline = Array.IndexOf(rows[0], "timeline");
        for (int i = 0; i < r.Entries.Count; i++)
        {
            Assert.Equal(r.Entries[i].Config.Cache, rows[i + 1][cache]);
            Assert.Equal(r.Entries[i].Timeline, rows[i + 1][timeline]);
            Assert.Equal(r.Entries[i].Seconds.Count, rows[i + 1][seconds].Split(';').Length);
        }

        Assert.Equal("inf", rows[1][psnr]);
        Assert.Equal("nan", rows.Single(row => row[cache] == "spectrum:n=2,alpha=0.75")[fd]);
        Assert.Equal(r.Entries[2].Psnr, double.Parse(rows[3][psnr], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Markdown_has_the_settings_floors_rule_and_one_row_per_entry()
    {
        BenchResults r = Small();
        string md = BenchReport.Markdown(r);
        string[] rows = [.. md.Split('\n').Where(l => l.StartsWith('|'))];

        Assert.Equal(r.Entries.Count + 2, rows.Length); // header, separator, entries
        int columns = rows[0].Count(c => c == '|');
        Assert.All(rows, row => Assert.Equal(columns, row.Count(c => c == '|')));
        for (int i = 0; i < r.Entries.Count; i++)
        {
            string label = r.Entries[i].Config.Label.Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);
            Assert.StartsWith("| " + label + " |", rows[i + 2], StringComparison.Ordinal);
        }

        Assert.Contains("| ref |", rows[2], StringComparison.Ordinal);
        Assert.Contains("identical", md, StringComparison.Ordinal);
        Assert.Contains("full (computed) steps", md, StringComparison.Ordinal);
        Assert.Contains("3.21", md, StringComparison.Ordinal);   // floor
        Assert.Contains("12.34", md, StringComparison.Ordinal);  // matched floor
        Assert.Contains("1000 samples", md, StringComparison.Ordinal);
        Assert.DoesNotContain("NaN", md, StringComparison.Ordinal);
        Assert.DoesNotContain("Infinity", md, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_svg_is_well_formed_and_frontiers_name_every_family_in_the_legend()
    {
        foreach (BenchResults r in new[] { Small(), Realistic() })
        {
            foreach ((string name, string? svg) in Svgs(r))
            {
                Assert.NotNull(svg);
                XDocument doc = ParseSvg(name, svg);
                string text = string.Join("\n", doc.Descendants(s_svg + "text").Select(t => t.Value));
                if (name.StartsWith("frontier", StringComparison.Ordinal))
                {
                    foreach (string family in r.Entries.Where(e => !e.Config.IsReference).Select(e => e.Config.Family).Distinct())
                    {
                        Assert.Contains(family, text, StringComparison.Ordinal);
                    }
                }
                else if (name == "timeline")
                {
                    Assert.All(r.Entries, e => Assert.Contains(e.Config.Label, text, StringComparison.Ordinal));
                }
                else
                {
                    Assert.All(r.Entries.Where(e => e.ShadowPerStep is not null), e => Assert.Contains(e.Config.Label, text, StringComparison.Ordinal));
                }
            }
        }
    }

    [Fact]
    public void Frechet_frontier_draws_the_matched_floor_and_the_reference_as_dashed_lines()
    {
        string svg = BenchReport.FrontierFdSvg(Small());
        XDocument doc = ParseSvg("fd", svg);
        string text = string.Join("\n", doc.Descendants(s_svg + "text").Select(t => t.Value));

        Assert.Contains("matched floor): 12.3", text, StringComparison.Ordinal);
        Assert.Contains("reference: 70.1", text, StringComparison.Ordinal);
        Assert.True(doc.Descendants(s_svg + "line").Count(l => l.Attribute("stroke-dasharray") is not null) >= 4); // two in the plot, two in the legend
    }

    [Fact]
    public void Shadow_charts_are_null_without_shadow_data()
    {
        BenchResults r = Small();
        foreach (BenchEntry e in r.Entries)
        {
            e.ShadowPerStep = null;
            e.ShadowPerBlock = null;
        }

        Assert.Null(BenchReport.ShadowSvg(r));
        Assert.Null(BenchReport.ShadowPerBlockSvg(r));
        Assert.DoesNotContain("Forecast error", BenchReport.Html(r), StringComparison.Ordinal);
    }

    [Fact]
    public void Html_is_self_contained_with_inline_svgs_and_images_for_every_entry()
    {
        BenchResults r = Small();
        string html = BenchReport.Html(r);

        Assert.StartsWith("<!DOCTYPE html>", html, StringComparison.Ordinal);
        Assert.Equal(5, Occurrences(html, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
        Assert.Equal(r.Entries.Count * r.StripClasses.Length, Occurrences(html, "src=\"data:image/png;base64,"));
        foreach (BenchEntry e in r.Entries)
        {
            Assert.Contains(">" + Escaped(e.Config.Label) + "</td><td><img", html, StringComparison.Ordinal);
        }

        foreach (int c in r.StripClasses)
        {
            Assert.Contains("<th>" + FashionMnist.ClassNames[c] + "</th>", html, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("src=\"http", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"http", html, StringComparison.Ordinal);
        Assert.DoesNotContain("NaN", WithoutDataUris(html), StringComparison.Ordinal);
        Assert.Contains("&lt;odd&gt; &amp; &quot;label&quot;", html, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_results_and_several_guidance_scales_still_render()
    {
        BenchResults empty = Small();
        empty.Entries.Clear();
        Assert.Single(ParseCsv(BenchReport.Csv(empty)));
        Assert.Equal(2, BenchReport.Markdown(empty).Split('\n').Count(l => l.StartsWith('|')));
        ParseSvg("psnr", BenchReport.FrontierPsnrSvg(empty));
        ParseSvg("fd", BenchReport.FrontierFdSvg(empty));
        ParseSvg("timeline", BenchReport.TimelineSvg(empty));
        Assert.Null(BenchReport.ShadowSvg(empty));
        Assert.Contains("<svg", BenchReport.Html(empty), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BenchReport.GridPng(empty));

        // a second guidance scale with its own reference, a 100-step entry, and an entry without images
        BenchResults r = Small();
        BenchConfig Cfg4(string cache, int steps, string family, string label, bool reference = false) =>
            new(cache, steps, 4f) { Family = family, Label = label, IsReference = reference };
        r.Entries.Add(Entry(Cfg4("none", 50, "full", "Full 50 steps cfg 4", reference: true), 50, 1, double.PositiveInfinity, 1, 66.0, 11, speedup: 1));
        r.Entries.Add(Entry(Cfg4("foca:n=5", 100, "foca", "FoCa n=5 100 steps cfg 4"), 20, 2.4, 33.0, 0.97, 67.0, 12, strip: []));
        foreach ((string name, string? svg) in Svgs(r))
        {
            XDocument doc = ParseSvg(name, svg!);
            if (name == "frontier-fd")
            {
                string text = string.Join("\n", doc.Descendants(s_svg + "text").Select(t => t.Value));
                Assert.Contains("reference cfg 1.5: 70.1", text, StringComparison.Ordinal);
                Assert.Contains("reference cfg 4: 66.0", text, StringComparison.Ordinal);
                Assert.Contains("foca (cfg 4)", text, StringComparison.Ordinal);
            }
        }

        string html = BenchReport.Html(r);
        Assert.Contains("no images", html, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => BenchReport.GridPng(r));
    }

    [Fact]
    public void GridPng_is_one_row_per_entry_and_one_column_per_strip_class()
    {
        BenchResults r = Small();
        byte[] png = BenchReport.GridPng(r);
        Assert.Equal(0x89, png[0]);
        Assert.Equal((byte)'P', png[1]);
        int width = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), height = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
        Assert.Equal((r.StripClasses.Length * 30) + 2, width);
        Assert.Equal((r.Entries.Count * 30) + 2, height);

        byte[] two = BenchReport.GridPng(r, [r.Entries[0], r.Entries[3]]);
        Assert.Equal((2 * 30) + 2, BinaryPrimitives.ReadInt32BigEndian(two.AsSpan(20)));

        r.Entries[1] = Entry(r.Entries[1].Config, 50, 1, 30, 0.9, 80, 10, strip: new float[5]);
        Assert.Throws<ArgumentException>(() => BenchReport.GridPng(r));
    }

    [Fact]
    public void Realistic_results_render_and_are_written_out_when_asked()
    {
        BenchResults r = Realistic();
        string html = BenchReport.Html(r);
        Assert.DoesNotContain("NaN", WithoutDataUris(html), StringComparison.Ordinal);
        Assert.Equal(r.Entries.Count, ParseCsv(BenchReport.Csv(r)).Count - 1);

        string? dir = Environment.GetEnvironmentVariable("DITCACHE_BENCH_REPORT_DIR");
        if (string.IsNullOrEmpty(dir))
        {
            return;
        }

        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "report.html"), html);
        File.WriteAllText(Path.Combine(dir, "bench.md"), BenchReport.Markdown(r));
        File.WriteAllText(Path.Combine(dir, "bench.csv"), BenchReport.Csv(r));
        File.WriteAllBytes(Path.Combine(dir, "grid.png"), BenchReport.GridPng(r));
        foreach ((string name, string? svg) in Svgs(r))
        {
            File.WriteAllText(Path.Combine(dir, name + ".svg"), svg);
        }

        foreach ((string name, string? svg) in Svgs(Small()))
        {
            File.WriteAllText(Path.Combine(dir, "small-" + name + ".svg"), svg);
        }
    }

    private static IEnumerable<(string Name, string? Svg)> Svgs(BenchResults r) =>
    [
        ("frontier-psnr", BenchReport.FrontierPsnrSvg(r)),
        ("frontier-fd", BenchReport.FrontierFdSvg(r)),
        ("timeline", BenchReport.TimelineSvg(r)),
        ("shadow", BenchReport.ShadowSvg(r)),
        ("shadow-blocks", BenchReport.ShadowPerBlockSvg(r)),
    ];

    private static XDocument ParseSvg(string name, string svg)
    {
        XDocument doc = XDocument.Parse(svg);
        XElement root = doc.Root!;
        Assert.Equal(s_svg + "svg", root.Name);
        Assert.NotNull(root.Attribute("width"));
        Assert.NotNull(root.Attribute("height"));
        Assert.NotNull(root.Attribute("viewBox"));
        Assert.NotNull(root.Element(s_svg + "title"));
        Assert.False(svg.Contains("NaN", StringComparison.Ordinal), $"{name}: NaN in the SVG");
        Assert.False(svg.Contains("Infinity", StringComparison.Ordinal), $"{name}: Infinity in the SVG");
        Assert.All(doc.Descendants(s_svg + "text").Select(t => t.Attribute("font-size")?.Value ?? "13"),
            size => Assert.True(double.Parse(size, System.Globalization.CultureInfo.InvariantCulture) >= 12, $"{name}: font size {size} < 12"));
        return doc;
    }

    private static string Escaped(string text) =>
        text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal)
            .Replace(">", "&gt;", StringComparison.Ordinal).Replace("\"", "&quot;", StringComparison.Ordinal);

    /// <summary>The page without its base64 images (which may spell "NaN" by chance).</summary>
    private static string WithoutDataUris(string html) =>
        System.Text.RegularExpressions.Regex.Replace(html, "data:image/png;base64,[A-Za-z0-9+/=]*", "data:");

    private static int Occurrences(string text, string what)
    {
        int n = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }

    /// <summary>RFC 4180 reader: quoted fields may hold commas, doubled quotes and line breaks.</summary>
    private static List<string[]> ParseCsv(string csv)
    {
        var rows = new List<string[]>();
        var row = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < csv.Length; i++)
        {
            char c = csv[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < csv.Length && csv[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                Assert.Equal(0, field.Length); // a quote only opens a field
                quoted = true;
            }
            else if (c == ',')
            {
                row.Add(field.ToString());
                field.Clear();
            }
            else if (c == '\n')
            {
                row.Add(field.ToString());
                field.Clear();
                rows.Add([.. row]);
                row.Clear();
            }
            else
            {
                field.Append(c);
            }
        }

        Assert.False(quoted, "unterminated quoted field");
        Assert.Equal(0, field.Length + row.Count); // the file ends with a line break
        return rows;
    }

    private static BenchEntry Entry(
        BenchConfig config, int computed, double flopsSpeedup, double psnr, double ssim, double fd, int seed,
        string? timeline = null, float[]? strip = null, double? speedup = null)
    {
        const double ReferenceFlops = 4.2e12;
        var rng = new Random(seed);
        strip ??= [.. Enumerable.Range(0, 10 * 784).Select(_ => (float)((rng.NextDouble() * 2) - 1))];
        return new BenchEntry
        {
            Config = config,
            ComputedSteps = computed,
            Flops = ReferenceFlops / flopsSpeedup,
            ReferenceFlops = ReferenceFlops,
            Seconds = [1.9 / flopsSpeedup, 2.0 / flopsSpeedup, 2.2 / flopsSpeedup],
            Speedup = speedup ?? (flopsSpeedup * 0.9),
            Psnr = psnr,
            Ssim = ssim,
            RelativeL2 = Math.Pow(10, -psnr / 20),
            FrechetDistance = fd,
            Accuracy = 0.83,
            CacheBytes = 3 << 20,
            Timeline = timeline ?? Timeline(config.Steps, computed),
            Strip = strip,
        };
    }

    /// <summary>A timeline of <paramref name="steps"/> letters with <paramref name="computed"/> evenly spaced C's, the rest F.</summary>
    private static string Timeline(int steps, int computed, char other = 'F')
    {
        char[] t = [.. Enumerable.Repeat(other, steps)];
        for (int i = 0; i < computed; i++)
        {
            t[(int)Math.Round(i * (steps - 1) / Math.Max(1.0, computed - 1))] = 'C';
        }

        return new string(t);
    }

    private static BenchResults Small()
    {
        BenchConfig Cfg(string cache, int steps, string family, string label, bool reference = false) =>
            new(cache, steps, 1.5f) { Family = family, Label = label, IsReference = reference };

        var r = new BenchResults
        {
            Model = "fmnist-dit-s2",
            Machine = "test machine, 2 cores",
            Command = "ditcache bench --samples 1000",
            Samples = 1000,
            Repeats = 3,
            Seed = 0,
            Sampler = "ddim",
            Threads = 2,
            Gemm = "managed",
            FloorFrechetDistance = 3.21,
            MatchedFloorFrechetDistance = 12.34,
            StripClasses = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            ClassNames = [.. FashionMnist.ClassNames],
        };
        r.Entries.Add(Entry(Cfg("none", 50, "full", "Full 50 steps", reference: true), 50, 1, double.PositiveInfinity, 1, 70.1, 1, speedup: 1));
        r.Entries.Add(Entry(Cfg("none", 20, "ddim-steps", "DDIM 20 steps"), 20, 2.5, 24.5, 0.9, 78.2, 2, timeline: new string('C', 20)));
        r.Entries.Add(Entry(Cfg("fora:n=3", 50, "fora", "FORA n=3"), 17, 2.9, 26.25, 0.93, 74.0, 3, timeline: Timeline(50, 17, 'S')));
        r.Entries.Add(Entry(Cfg("fora:n=1", 50, "fora", "FORA n=1"), 50, 1.0, 100, 1, 70.1, 4));
        r.Entries.Add(Entry(Cfg("taylorseer:n=4,o=2", 50, "taylorseer", "TaylorSeer n=4 o=2"), 14, 3.4, 29.0, 0.95, 72.5, 5));
        r.Entries.Add(Entry(Cfg("foca:n=5", 50, "foca", "FoCa n=5"), 11, 4.4, 31.5, 0.96, 71.3, 6));
        r.Entries.Add(Entry(Cfg("spectrum:n=2,alpha=0.75", 50, "spectrum", "Spectrum <odd> & \"label\""), 26, 1.9, double.NaN, double.NaN, double.NaN, 7,
            timeline: Timeline(50, 26, 'P')));
        BenchEntry foca = r.Entries[5];
        foca.ShadowPerStep = [.. foca.Timeline.Select((c, i) => c == 'C' ? double.NaN : 1e-3 * (1 + (i % 5)))];
        foca.ShadowPerBlock = [0.002, 0.004, 0.003, double.NaN, 0.01, 0.02];
        return r;
    }

    /// <summary>About 20 entries across nine families with plausible numbers, for looking at the page.</summary>
    private static BenchResults Realistic()
    {
        float[][] images = RealImages();
        var r = new BenchResults
        {
            Model = "fmnist-dit-s2 (step 4800)",
            Machine = "AMD EPYC 7B13, 2 cores, Linux 6.1, .NET 10.0.0",
            Command = "ditcache bench --samples 1000 --repeats 3 --cfg 1.5 --shadow foca:n=5,taylorseer:n=5,o=2",
            Samples = 1000,
            Repeats = 3,
            Seed = 0,
            Sampler = "ddim",
            Threads = 2,
            Gemm = "openblas",
            FloorFrechetDistance = 2.87,
            MatchedFloorFrechetDistance = 8.41,
            StripClasses = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            ClassNames = [.. FashionMnist.ClassNames],
        };

        int seed = 10;
        void Add(string cache, int steps, string family, string label, int computed, double flopsSpeedup, double psnr, double fd,
            string? timeline = null, bool reference = false)
        {
            var rng = new Random(seed++);
            double noise = reference ? 0 : Math.Pow(10, -psnr / 20) * 2;
            float[] strip = [.. images.SelectMany(img => img.Select(v => Math.Clamp(v + (float)(noise * ((rng.NextDouble() * 2) - 1)), -1f, 1f)))];
            double ssim = reference ? 1 : Math.Clamp(1 - (6 / psnr / 2), 0, 1);
            r.Entries.Add(Entry(new BenchConfig(cache, steps, 1.5f) { Family = family, Label = label, IsReference = reference },
                computed, flopsSpeedup, reference ? double.PositiveInfinity : psnr, ssim, fd, seed, timeline, strip,
                speedup: reference ? 1 : flopsSpeedup * (0.82 + (0.1 * rng.NextDouble()))));
        }

        Add("none", 50, "full", "Full 50 steps", 50, 1, 0, 69.5, reference: true);
        Add("none", 25, "ddim-steps", "DDIM 25 steps", 25, 2, 22.1, 74.8, new string('C', 25));
        Add("none", 17, "ddim-steps", "DDIM 17 steps", 17, 50 / 17.0, 18.9, 82.3, new string('C', 17));
        Add("none", 10, "ddim-steps", "DDIM 10 steps", 10, 5, 15.2, 104.6, new string('C', 10));
        Add("fora:n=2", 50, "fora", "FORA n=2", 25, 1.96, 27.3, 72.9, Timeline(50, 25, 'S'));
        Add("fora:n=3", 50, "fora", "FORA n=3", 17, 2.85, 22.4, 78.1, Timeline(50, 17, 'S'));
        Add("fora:n=5", 50, "fora", "FORA n=5", 10, 4.5, 17.0, 98.7, Timeline(50, 10, 'S'));
        Add("taylorseer:n=3,o=1", 50, "taylorseer", "TaylorSeer n=3 o=1", 17, 2.8, 30.6, 71.2);
        Add("taylorseer:n=5,o=2", 50, "taylorseer", "TaylorSeer n=5 o=2", 10, 4.4, 25.8, 76.4);
        Add("foca:n=3", 50, "foca", "FoCa n=3", 17, 2.78, 35.9, 70.1);
        Add("foca:n=5", 50, "foca", "FoCa n=5", 10, 4.35, 30.2, 72.6);
        Add("foca:n=6", 50, "foca", "FoCa n=6", 9, 4.9, 27.5, 75.3);
        Add("foca:n=5,corrector=off", 50, "foca-bdf2", "FoCa n=5 BDF2 only", 10, 4.35, 26.9, 75.0);
        Add("foca:n=3,corrector=off", 50, "foca-bdf2", "FoCa n=3 BDF2 only", 17, 2.78, 33.1, 70.9);
        Add("foca:n=5,time=t", 50, "foca-t", "FoCa n=5 time=t", 10, 4.35, 29.4, 73.0);
        Add("foca:n=3,time=t", 50, "foca-t", "FoCa n=3 time=t", 17, 2.78, 35.0, 70.3);
        Add("foca:n=5,reading=cachedit", 50, "foca-cachedit", "FoCa n=5 CacheDiT", 10, 4.3, 28.8, 73.9);
        Add("spectrum:n=2,alpha=0.75", 50, "spectrum", "Spectrum n=2 α=0.75", 25, 1.98, 33.4, 70.6, Timeline(50, 25, 'S'));
        Add("spectrum:n=3,alpha=0.75", 50, "spectrum", "Spectrum n=3 α=0.75", 17, 2.9, 28.1, 72.8, Timeline(50, 17, 'S'));
        Add("spectrum:n=4,alpha=3", 50, "spectrum", "Spectrum n=4 α=3", 13, 3.7, 23.9, 77.7, Timeline(50, 13, 'S'));

        var noise = new Random(99);
        foreach (BenchEntry e in r.Entries.Where(e => e.Config.Cache is "foca:n=5" or "taylorseer:n=5,o=2" or "fora:n=3"))
        {
            double scale = e.Config.Family switch { "foca" => 1, "taylorseer" => 3, _ => 12 };
            e.ShadowPerStep = [.. e.Timeline.Select((c, i) =>
                c == 'C' ? double.NaN : scale * 2e-3 * (1 + (3 * Math.Exp(-i / 6.0))) * (0.7 + (0.6 * noise.NextDouble())))];
            e.ShadowPerBlock = [.. Enumerable.Range(0, 12).Select(b => scale * 1.5e-3 * (1 + (0.25 * b)) * (0.8 + (0.4 * noise.NextDouble())))];
        }

        return r;
    }

    /// <summary>The first test image of each class from Debian's Fashion-MNIST, or stripes when it is not installed.</summary>
    private static float[][] RealImages()
    {
        var images = new float[10][];
        if (FashionMnist.IsInstalled())
        {
            FashionMnist test = FashionMnist.Load(FashionMnistSplit.Test);
            for (int i = 0; i < test.Count && images.Any(x => x is null); i++)
            {
                int label = test.Labels[i];
                if (images[label] is null)
                {
                    images[label] = new float[784];
                    test.CopyImages(i, 1, images[label]);
                }
            }

            return images;
        }

        for (int c = 0; c < 10; c++)
        {
            images[c] = [.. Enumerable.Range(0, 784).Select(p => ((p / 28) + (p % 28)) % (c + 2) == 0 ? 1f : -1f)];
        }

        return images;
    }
}
