using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// The accelerators reachable from <c>--cache</c>. Adding a method adds its file and one line here; there is no
/// central switch over method types anywhere else.
/// </summary>
public static class CacheRegistry
{
    private static readonly (string Name, string Summary, Func<CacheSpec, ICacheOptions> Parse)[] s_methods =
    [
        ("none", "no caching: every block at every step", spec => NoCacheOptions.FromSpec(spec)),
        ("fora", "FORA static reuse of attn/MLP outputs: n=3", spec => ForaOptions.FromSpec(spec)),
        ("taylorseer", "TaylorSeer Taylor forecast per module: n=4,o=4,warmup=2", spec => TaylorSeerOptions.FromSpec(spec)),
        ("foca", "FoCa-A BDF2 forecast + Heun calibration per module: n=5,warmup=2,corrector=on|off,time=step|t,reading=paper|cachedit", spec => FocaOptions.FromSpec(spec)),
        ("toca", "ToCa token-wise MLP refresh between full steps: n=3,ratio=0.07,sched=ddim50|ddpm250|constant,w=0.25,bonus=0.6", spec => ToCaOptions.FromSpec(spec)),
        ("duca", "DuCa ToCa steps alternating with whole-stack reuse: n=3,ratio=0.05,sched=ddim50|ddpm250|constant,w=0.25,bonus=0.8", spec => DuCaOptions.FromSpec(spec)),
        ("teacache", "TeaCache: skip the block stack while the calibrated poly(rel L1 of block 0's modulated input) sums below l: l=0.05 (needs ditcache calibrate teacache)", spec => TeaCacheOptions.FromSpec(spec)),
        ("smoothcache", "SmoothCache static per-type reuse from calibrated error rows: alpha=0.22 (needs ditcache calibrate smoothcache)", spec => SmoothCacheOptions.FromSpec(spec)),
        ("magcache", "MagCache skip by calibrated residual-magnitude ratios: thresh=0.24,k=5,retention=0.1 (needs ditcache calibrate magcache)", spec => MagCacheOptions.FromSpec(spec)),
        ("spectrum", "Spectrum Chebyshev + linear forecast of the block stack: n=2,alpha=0.75,m=4,lam=0.1,w=0.5,warmup=5", spec => SpectrumOptions.FromSpec(spec)),
        ("delta-dit", "Δ-DiT stage-adaptive block-group Δ-Cache: n=2,b=<half the steps>,blocks=<half the depth>", spec => DeltaDitOptions.FromSpec(spec)),
        ("fbcache", "First-Block-Cache, skip the rest when block 0's residual barely moved: t=0.08,warmup=8,maxcached=-1,maxrun=-1", spec => FBCacheOptions.FromSpec(spec)),
        ("dbcache", "DBCache, F front + B back blocks always run, the middle cached on a residual diff: f=8,b=0,t=0.08,warmup=8,maxcached=-1,maxrun=-1", spec => DBCacheOptions.FromSpec(spec)),
    ];

    /// <summary>Names and one-line summaries, for help text.</summary>
    public static IEnumerable<(string Name, string Summary)> Methods => s_methods.Select(m => (m.Name, m.Summary));

    /// <summary>Parses and validates a <c>--cache</c> spec into options.</summary>
    /// <exception cref="DitCacheException">Unknown name or bad knob (exit code 2).</exception>
    public static ICacheOptions Parse(string text)
    {
        CacheSpec spec = CacheSpec.Parse(text);
        foreach ((string name, _, Func<CacheSpec, ICacheOptions> parse) in s_methods)
        {
            if (name == spec.Name)
            {
                ICacheOptions options = parse(spec);
                options.Validate();
                return options;
            }
        }

        throw new DitCacheException(
            $"--cache '{text}': unknown accelerator '{spec.Name}'; choose one of {string.Join(", ", s_methods.Select(m => m.Name))}",
            exitCode: 2);
    }
}
