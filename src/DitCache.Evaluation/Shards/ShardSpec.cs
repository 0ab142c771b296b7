using System;
using System.Globalization;
using DitCache.Tensors;

namespace DitCache.Evaluation.Shards;

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/> (<c>--shard k/n</c>, 0 ≤ k &lt; n): the share of a run one process
/// does. The unit of work is the batch: shard k runs the batches b with <c>b mod n = k</c> (round robin, so every
/// shard gets early and late images alike and the last, shorter batch falls to one shard). Which images a batch holds,
/// their classes and their noise follow from the settings alone, never from k or n, so any sharding makes the images
/// of a one-process run (docs/methods.md §9.3).
/// </summary>
/// <param name="Index">k, 0 … n − 1.</param>
/// <param name="Count">n, at least 1.</param>
public readonly record struct ShardSpec(int Index, int Count)
{
    /// <summary>The whole run as one shard.</summary>
    public static ShardSpec Whole => new(0, 1);

    /// <summary>The folder a shard writes into under its <c>--out-dir</c>: <c>shard-k-of-n</c>.</summary>
    public string DirectoryName => string.Create(CultureInfo.InvariantCulture, $"shard-{Index}-of-{Count}");

    /// <summary>Whether this shard runs batch <paramref name="batch"/>.</summary>
    public bool Owns(int batch) => batch % Count == Index;

    /// <summary>The shard of <paramref name="count"/> that runs <paramref name="batch"/>.</summary>
    public static int OwnerOf(int batch, int count) => batch % count;

    /// <summary>Parses <c>k/n</c>; <paramref name="flag"/> names the option in errors.</summary>
    /// <exception cref="DitCacheException">Not two integers with 0 ≤ k &lt; n (exit code 2).</exception>
    public static ShardSpec Parse(string text, string flag = "--shard")
    {
        ArgumentNullException.ThrowIfNull(text);
        string[] parts = text.Split('/');
        if (parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            && n >= 1 && k < n)
        {
            return new ShardSpec(k, n);
        }

        throw new DitCacheException(
            $"{flag} '{text}' is not a shard; give k/n with 0 <= k < n, e.g. 0/4 for the first of four shards (a Kubernetes JOB_COMPLETION_INDEX or Slurm SLURM_ARRAY_TASK_ID counts from 0 as k does)",
            exitCode: 2);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");
}
