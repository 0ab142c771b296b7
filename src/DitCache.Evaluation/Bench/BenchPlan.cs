using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using DitCache.Caching;
using DitCache.Tensors;

namespace DitCache.Evaluation.Bench;

/// <summary>
/// The list of configurations a benchmark measures. A configuration line is <c>SPEC [steps=S] [cfg=X]</c>, e.g.
/// <c>foca:n=5</c>, <c>none steps=20</c> (plain DDIM with fewer steps) or <c>taylorseer:n=5 cfg=1.5</c>; missing
/// steps and cfg take the run's defaults. Every guidance scale in the plan gets its full-compute reference
/// (<c>none</c> at the reference step count) first: PSNR, SSIM and speedup are measured against it.
/// </summary>
public static class BenchPlan
{
    /// <summary>Knobs that move a method along its own speed/quality curve; every other knob names a separate family.</summary>
    private static readonly string[] s_pointKnobs = ["n", "alpha", "t", "l", "thresh", "ratio"];

    /// <summary>
    /// The full preset: the DiT table of the FoCa paper transposed to our model. Full 50-step sampling; DDIM with
    /// 25/20/18/12/11 steps (18 and 11 are the full-step budgets of n = 3 and n = 5); FORA, TaylorSeer and FoCa at
    /// n = 2, 3, 5; FoCa's BDF2-only, real-time-axis and cache-dit readings at n = 3 and 5; Spectrum at two
    /// settings; warm-up sensitivity (1 and 4 full steps before the first forecast) and guidance sensitivity
    /// (CFG 1.5) for the forecasters; then the baselines of the other families at two points each where they have a
    /// speed knob (Δ-DiT, FBCache, DBCache, TeaCache, SmoothCache, MagCache; the calibrated ones at the shipped
    /// calibration's 2x tuning and near 4x) and ToCa and DuCa at their README settings.
    /// </summary>
    public static string[] FullLines =>
    [
        "none", "none steps=25", "none steps=20", "none steps=18", "none steps=12", "none steps=11",
        "fora:n=2", "fora:n=3", "fora:n=5",
        "taylorseer:n=2", "taylorseer:n=3", "taylorseer:n=5",
        "foca:n=2", "foca:n=3", "foca:n=5",
        "foca:n=3,corrector=off", "foca:n=5,corrector=off",
        "foca:n=3,time=t", "foca:n=5,time=t",
        "foca:n=3,reading=cachedit", "foca:n=5,reading=cachedit",
        "spectrum:n=2,alpha=0.75", "spectrum:n=2,alpha=3",
        "taylorseer:n=5,warmup=1", "taylorseer:n=5,warmup=4", "foca:n=5,warmup=1", "foca:n=5,warmup=4",
        "none cfg=1.5", "fora:n=5 cfg=1.5", "taylorseer:n=5 cfg=1.5", "foca:n=5 cfg=1.5",
        "delta-dit:n=2", "delta-dit:n=3,blocks=8",
        "fbcache:t=0.08", "fbcache:t=0.2",
        "dbcache:f=4,b=0,t=0.1", "dbcache:f=2,b=2,t=0.2",
        "toca:n=3,ratio=0.07", "duca:n=3,ratio=0.05",
        "teacache:l=0.023047", "teacache:l=0.0625",
        "smoothcache:alpha=0.08239", "smoothcache:alpha=0.22",
        "magcache:thresh=0.02093", "magcache:thresh=0.24",
    ];

    /// <summary>
    /// The quick preset: the forecasters at n = 3 and 5, one point of every other family, for a local check in minutes.
    /// </summary>
    public static string[] QuickLines =>
    [
        "none", "none steps=18", "none steps=11",
        "fora:n=3", "fora:n=5", "taylorseer:n=3", "taylorseer:n=5", "foca:n=3", "foca:n=5",
        "foca:n=5,corrector=off", "foca:n=5,time=t", "foca:n=5,reading=cachedit",
        "spectrum:n=2,alpha=0.75",
        "delta-dit:n=3,blocks=8", "fbcache:t=0.2", "dbcache:f=2,b=2,t=0.2", "toca:n=3,ratio=0.07", "duca:n=3,ratio=0.05",
        "teacache:l=0.0625", "smoothcache:alpha=0.22", "magcache:thresh=0.24",
    ];

    /// <summary>
    /// Parses configuration lines (blank lines and <c>#</c> comments skipped), adds the full-compute reference of
    /// every guidance scale at the front, drops duplicates, and names each configuration's family and label.
    /// </summary>
    /// <param name="lines">Configuration lines.</param>
    /// <param name="source">Where the lines came from, for error messages (a file name or "--cache").</param>
    /// <param name="steps">Default step count and the reference's step count.</param>
    /// <param name="cfg">Default guidance scale.</param>
    /// <exception cref="DitCacheException">A bad line (exit code 2), naming the source and line.</exception>
    public static List<BenchConfig> Parse(IEnumerable<string> lines, string source, int steps, float cfg)
    {
        var parsed = new List<BenchConfig>();
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            string line = raw.Split('#')[0].Trim();
            if (line.Length > 0)
            {
                parsed.Add(ParseLine(line, $"{source} line {number}", steps, cfg));
            }
        }

        if (parsed.Count == 0)
        {
            throw new DitCacheException($"{source}: no configurations; give lines such as 'foca:n=5' or 'none steps=20'", exitCode: 2);
        }

        var plan = new List<BenchConfig>();
        foreach (float scale in parsed.Select(c => c.Cfg).Distinct())
        {
            plan.Add(Describe(new BenchConfig("none", steps, scale), steps, cfg));
        }

        foreach (BenchConfig c in parsed)
        {
            BenchConfig named = Describe(c, steps, cfg);
            if (!plan.Any(p => p.Key == named.Key))
            {
                plan.Add(named);
            }
        }

        return plan;
    }

    /// <summary>Reads configuration lines from <paramref name="path"/>.</summary>
    /// <exception cref="DitCacheException">Missing file (exit code 2) or a bad line.</exception>
    public static List<BenchConfig> FromFile(string path, int steps, float cfg)
    {
        if (!File.Exists(path))
        {
            throw new DitCacheException($"--specs {path}: file not found; give a text file with one configuration per line, e.g. 'foca:n=5 steps=50 cfg=4'", exitCode: 2);
        }

        return Parse(File.ReadAllLines(path), path, steps, cfg);
    }

    private static BenchConfig ParseLine(string line, string where, int defaultSteps, float defaultCfg)
    {
        string[] parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        string spec = parts[0];
        int steps = defaultSteps;
        float cfg = defaultCfg;
        foreach (string part in parts.Skip(1))
        {
            if (part.StartsWith("steps=", StringComparison.Ordinal)
                && int.TryParse(part.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int s) && s is >= 1 and <= 1000)
            {
                steps = s;
            }
            else if (part.StartsWith("cfg=", StringComparison.Ordinal)
                && float.TryParse(part.AsSpan(4), NumberStyles.Float, CultureInfo.InvariantCulture, out float g) && float.IsFinite(g) && g >= 1f)
            {
                cfg = g;
            }
            else
            {
                throw new DitCacheException(
                    $"{where}: '{part}' in '{line}' is not understood; write SPEC [steps=S] [cfg=X] with S in 1..1000 and X >= 1, e.g. 'foca:n=5 cfg=1.5'",
                    exitCode: 2);
            }
        }

        try
        {
            ICacheOptions options = CacheRegistry.Parse(spec);
            return new BenchConfig(options.Spec == "none" ? "none" : spec, steps, cfg);
        }
        catch (DitCacheException e)
        {
            throw new DitCacheException($"{where}: {e.Message}", exitCode: 2);
        }
    }

    /// <summary>Fills in the family, label and reference flag of <paramref name="c"/>.</summary>
    public static BenchConfig Describe(BenchConfig c, int referenceSteps, float mainCfg)
    {
        string cfgSuffix = c.Cfg == mainCfg ? "" : FormattableString.Invariant($" cfg={c.Cfg}");
        int colon = c.Cache.IndexOf(':', StringComparison.Ordinal);
        string name = colon < 0 ? c.Cache : c.Cache[..colon];
        string[] knobs = colon < 0 ? [] : c.Cache[(colon + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (name == "none")
        {
            bool reference = c.Steps == referenceSteps;
            return c with
            {
                IsReference = reference,
                Family = (reference ? "full" : "DDIM steps") + cfgSuffix,
                Label = (reference ? $"full {c.Steps} steps" : $"DDIM {c.Steps} steps") + cfgSuffix,
            };
        }

        string[] point = knobs.Where(k => s_pointKnobs.Contains(k.Split('=')[0])).ToArray();
        string[] other = knobs.Where(k => !s_pointKnobs.Contains(k.Split('=')[0])).ToArray();
        string display = CacheRegistry.DisplayName(name);
        string family = display + (other.Length > 0 ? " " + string.Join(",", other) : "") + cfgSuffix
            + (c.Steps == referenceSteps ? "" : $" {c.Steps} steps");
        string label = family + (point.Length > 0 ? " " + string.Join(",", point) : "");
        return c with { Family = family, Label = label };
    }
}
