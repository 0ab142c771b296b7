using System;
using System.Collections.Generic;
using System.Linq;
using DitCache.Caching.Calibration;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>One accelerator as the registry lists it.</summary>
/// <param name="Name">The name in <c>--cache</c> specs, e.g. <c>foca</c>.</param>
/// <param name="DisplayName">The name in reports and tables, as the paper writes it, e.g. <c>FoCa</c>.</param>
/// <param name="Summary">One line for help text: what it does and its knobs with their defaults.</param>
/// <param name="Parse">Reads a parsed spec into the method's options.</param>
/// <param name="Calibration">The method's calibration section, for methods that <c>ditcache calibrate</c> measures; else null.</param>
public sealed record CacheMethod(string Name, string DisplayName, string Summary, Func<CacheSpec, ICacheOptions> Parse,
    CalibratedMethod? Calibration = null);

/// <summary>
/// The accelerators reachable from <c>--cache</c>. Adding a method adds its file and one line here; there is no
/// central switch over method types anywhere else. A calibrated method's line also names its calibration section,
/// which is how the calibration file and <c>ditcache calibrate</c> find it.
/// </summary>
public static class CacheRegistry
{
    private static readonly CacheMethod[] s_methods =
    [
        new("none", "none", "no caching: every block at every step", spec => NoCacheOptions.FromSpec(spec)),
        new("fora", "FORA", "FORA static reuse of attn/MLP outputs: n=3", spec => ForaOptions.FromSpec(spec)),
        new("taylorseer", "TaylorSeer", "TaylorSeer Taylor forecast per module: n=4,o=4,warmup=2,basis=taylor|newton", spec => TaylorSeerOptions.FromSpec(spec)),
        new("hicache", "HiCache", "HiCache scaled-Hermite forecast of TaylorSeer's factors per module: n=4,o=2,warmup=2,sigma=0.5", spec => HiCacheOptions.FromSpec(spec)),
        new("freqca", "FreqCa", "FreqCa whole-stack CRF: low DCT band reused, high band Hermite-forecast: n=4,o=2,warmup=2,sigma=0.5,cutoff=0.25", spec => FreqCaOptions.FromSpec(spec)),
        new("speca", "SpeCa", "SpeCa per-sample TaylorSeer drafts, verified on one block, rejected drafts computed: tau=0.1,decay=0.01,floor=0.01,min=2,max=5,o=4,warmup=3,layer=-1,metric=rel-l1|l2,reject=now|next", spec => SpeCaOptions.FromSpec(spec)),
        new("foca", "FoCa", "FoCa-A BDF2 forecast + Heun calibration per module: n=5,warmup=2,corrector=on|off,time=step|t,reading=paper|cachedit", spec => FocaOptions.FromSpec(spec)),
        new("toca", "ToCa", "ToCa token-wise MLP refresh between full steps: n=3,ratio=0.07,sched=ddim50|ddpm250|constant,w=0.25,bonus=0.6,schedule=block|step,score=attention|random|kv-norm", spec => ToCaOptions.FromSpec(spec)),
        new("duca", "DuCa", "DuCa ToCa steps alternating with whole-stack reuse: n=3,ratio=0.05,sched=ddim50|ddpm250|constant,w=0.25,bonus=0.8,schedule=block|step,score=attention|random|kv-norm", spec => DuCaOptions.FromSpec(spec)),
        new("teacache", "TeaCache", "TeaCache: skip the block stack while the calibrated poly(rel L1 of block 0's modulated input) sums below l: l=0.05 (needs ditcache calibrate teacache)", spec => TeaCacheOptions.FromSpec(spec),
            CalibratedMethod.Of<TeaCacheCalibration>()),
        new("smoothcache", "SmoothCache", "SmoothCache static per-type reuse from calibrated error rows: alpha=0.22 (needs ditcache calibrate smoothcache)", spec => SmoothCacheOptions.FromSpec(spec),
            CalibratedMethod.Of<SmoothCacheCalibration>()),
        new("magcache", "MagCache", "MagCache skip by calibrated residual-magnitude ratios: thresh=0.24,k=5,retention=0.1 (needs ditcache calibrate magcache)", spec => MagCacheOptions.FromSpec(spec),
            CalibratedMethod.Of<MagCacheCalibration>()),
        new("spectrum", "Spectrum", "Spectrum Chebyshev + linear forecast of the block stack: n=2,alpha=0.75,m=4,lam=0.1,w=0.5,warmup=5", spec => SpectrumOptions.FromSpec(spec)),
        new("delta-dit", "Δ-DiT", "Δ-DiT stage-adaptive block-group Δ-Cache: n=2,b=<half the steps>,blocks=<half the depth>", spec => DeltaDitOptions.FromSpec(spec)),
        new("fbcache", "FBCache", "First-Block-Cache, skip the rest when block 0's residual barely moved: t=0.08,warmup=8,maxcached=-1,maxrun=-1", spec => FBCacheOptions.FromSpec(spec)),
        new("dbcache", "DBCache", "DBCache, F front + B back blocks always run, the middle cached on a residual diff: f=8,b=0,t=0.08,warmup=8,maxcached=-1,maxrun=-1", spec => DBCacheOptions.FromSpec(spec)),
    ];

    /// <summary>Every registered accelerator, in help-text order.</summary>
    public static IReadOnlyList<CacheMethod> All => s_methods;

    /// <summary>Names and one-line summaries, for help text.</summary>
    public static IEnumerable<(string Name, string Summary)> Methods => s_methods.Select(m => (m.Name, m.Summary));

    /// <summary>The calibration sections of the calibrated methods, in registry order.</summary>
    public static IEnumerable<CalibratedMethod> Calibrated => s_methods.Where(m => m.Calibration is not null).Select(m => m.Calibration!);

    /// <summary>The display name of <c>--cache</c> name <paramref name="name"/>, or <paramref name="name"/> itself when unknown.</summary>
    public static string DisplayName(string name) =>
        s_methods.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.Ordinal))?.DisplayName ?? name;

    /// <summary>Parses and validates a <c>--cache</c> spec into options.</summary>
    /// <exception cref="DitCacheException">Unknown name or bad knob (exit code 2).</exception>
    public static ICacheOptions Parse(string text)
    {
        CacheSpec spec = CacheSpec.Parse(text);
        foreach (CacheMethod method in s_methods)
        {
            if (method.Name == spec.Name)
            {
                ICacheOptions options = method.Parse(spec);
                options.Validate();
                return options;
            }
        }

        throw new DitCacheException(
            $"--cache '{text}': unknown accelerator '{spec.Name}'; choose one of {string.Join(", ", s_methods.Select(m => m.Name))}",
            exitCode: 2);
    }
}
