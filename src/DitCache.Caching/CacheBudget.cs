using System;
using System.Collections.Generic;
using System.Globalization;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>The configuration <see cref="CacheBudget.Fit"/> chose, and what it tried before.</summary>
/// <param name="Options">The first configuration of the chain that fits.</param>
/// <param name="Bytes">Its feature storage for the run.</param>
/// <param name="Tried">The configurations over the budget, in the order tried, with their bytes.</param>
public sealed record BudgetChoice(ICacheOptions Options, long Bytes, IReadOnlyList<(string Spec, long Bytes)> Tried)
{
    /// <summary>Whether the requested configuration had to give way to a coarser one.</summary>
    public bool FellBack => Tried.Count > 0;

    /// <summary>One line for the console: what was asked, what it needed, what runs.</summary>
    public string Describe(long budget)
    {
        string chosen = string.Create(CultureInfo.InvariantCulture, $"{Options.Spec} ({CacheBudget.Format(Bytes)})");
        if (!FellBack)
        {
            return string.Create(CultureInfo.InvariantCulture, $"--cache-budget {CacheBudget.Format(budget)}: {chosen} fits");
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"--cache-budget {CacheBudget.Format(budget)}: {Tried[0].Spec} needs {CacheBudget.Format(Tried[0].Bytes)}; running the coarser {chosen}");
    }
}

/// <summary>
/// <c>--cache-budget BYTES</c>: a ceiling on the feature storage of an accelerator (docs/accelerators/cache-budget.md).
/// A method whose history does not fit falls back along its <see cref="ICacheOptions.Coarser"/> chain (per-module
/// forecasters: one order less at a time, then FreqCa's single whole-stack residual at the same interval) to the
/// first configuration that fits; when none does, the run is refused before anything is allocated.
/// </summary>
public static class CacheBudget
{
    /// <summary>The first configuration of <paramref name="options"/>' chain whose storage for <paramref name="run"/> is at most <paramref name="budget"/> bytes.</summary>
    /// <exception cref="DitCacheException">Nothing in the chain fits (exit code 2), naming the smallest and its bytes.</exception>
    public static BudgetChoice Fit(ICacheOptions options, CacheRunInfo run, long budget)
    {
        ArgumentNullException.ThrowIfNull(options);
        var tried = new List<(string, long)>();
        for (ICacheOptions? current = options; current is not null; current = current.Coarser())
        {
            long bytes = current.Bytes(run);
            if (bytes <= budget)
            {
                return new BudgetChoice(current, bytes, tried);
            }

            tried.Add((current.Spec, bytes));
        }

        (string smallest, long least) = tried[^1];
        throw new DitCacheException(string.Create(CultureInfo.InvariantCulture,
            $"--cache-budget {Format(budget)}: no configuration of --cache {options.Spec} fits; the coarsest, {smallest}, needs {Format(least)} for {run.Batch} batch rows; raise --cache-budget to at least {least}, sample fewer images at once, or choose another accelerator"),
            exitCode: 2);
    }

    /// <summary>
    /// Parses a byte count: a whole number with an optional binary suffix K, M, G (also KiB, MiB, GiB; 1K = 1024), e.g.
    /// <c>512M</c>, <c>2G</c>, <c>1500000</c>.
    /// </summary>
    /// <exception cref="DitCacheException">Anything else (exit code 2), naming <paramref name="flag"/>.</exception>
    public static long ParseBytes(string text, string flag)
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim();
        long unit = 1;
        foreach ((string suffix, long scale) in new[] { ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("K", 1L << 10), ("M", 1L << 20), ("G", 1L << 30) })
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase))
            {
                unit = scale;
                t = t[..^suffix.Length];
                break;
            }
        }

        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value < 1 || value > long.MaxValue / unit)
        {
            throw new DitCacheException($"{flag} {text}: expected a positive whole number of bytes, optionally with K, M or G (binary: 1K = 1024), e.g. 512M", exitCode: 2);
        }

        return value * unit;
    }

    /// <summary>Bytes as MiB with two decimals (or bytes below 1 MiB), e.g. <c>5.74 MiB</c>.</summary>
    public static string Format(long bytes) => bytes >= 1L << 20
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.##} MiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes:N0} bytes");
}
