using System.CommandLine;
using System.IO;
using DitCache.Caching;
using DitCache.Sampling;

namespace DitCache.Cli;

/// <summary><c>--cache-budget BYTES</c> of <c>sample</c>, <c>evaluate</c> and <c>info</c> (docs/accelerators/cache-budget.md).</summary>
internal static class CacheBudgetFlag
{
    public static Option<string?> Create() => new("--cache-budget")
    {
        Description = "ceiling on the accelerator's feature memory, e.g. 512M or 2G (binary units); a per-module forecaster whose history would not fit falls back to a lower order, then to FreqCa's single whole-stack residual; refused when nothing fits",
    };

    /// <summary>The budget in bytes, or null without the flag; a bad value is a usage error naming the flag.</summary>
    public static long? Parse(string? text) => text is null ? null : CacheBudget.ParseBytes(text, "--cache-budget");

    /// <summary>Applies <paramref name="budget"/> to <paramref name="cache"/> for runs of <paramref name="images"/> images; says on stderr what runs.</summary>
    public static ICacheOptions Apply(ICacheOptions cache, long? budget, DiffusionPipeline pipeline, int images, int steps, string sampler, float cfg, TextWriter stderr)
    {
        if (budget is not long b)
        {
            return cache;
        }

        BudgetChoice choice = pipeline.FitBudget(cache, images, steps, sampler, cfg, b);
        stderr.WriteLine(choice.Describe(b));
        return choice.Options;
    }
}
