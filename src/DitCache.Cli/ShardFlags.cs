using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using DitCache.Evaluation.Assets;
using DitCache.Evaluation.Bench;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Cli;

/// <summary>
/// The flags of a sharded run (<c>--shard k/n</c>, <c>--out-dir DIR</c>) shared by <c>sample</c> and <c>evaluate</c>,
/// and what every shard records of its settings (docs/methods.md §9.3).
/// </summary>
internal static class ShardFlags
{
    public static Option<string?> Shard() => new("--shard")
    {
        Description = "run shard k of n (k/n, 0 <= k < n): the batches b with b mod n = k, into --out-dir/shard-k-of-n; each image's class and noise depend only on (seed, index), so the merged shards ('ditcache merge') equal one process; a rerun resumes",
    };

    public static Option<string?> OutDir() => new("--out-dir")
    {
        Description = "write every finished image to its own file in OUT/shard-k-of-n (with a manifest; a rerun skips what is done); merge the shards with 'ditcache merge OUT --out MERGED'",
    };

    /// <summary>Refuses a flag that does not apply to a sharded run.</summary>
    public static void Refuse(bool given, string flag, string why)
    {
        if (given)
        {
            throw SampleCommand.Usage($"{flag} does not apply with --out-dir ({why}); drop {flag}");
        }
    }

    /// <summary>
    /// The model for a sharded run and its fingerprint (SHA-256 of its tensors, as <c>ditcache bench</c> records it):
    /// shards of different models are told apart by it, not by the path, which differs from machine to machine.
    /// </summary>
    public static (DitWeights Weights, string Fingerprint) LoadModel(string? path, int? heads, int? inputSize, WeightPrecision precision)
    {
        TensorFile file = path is null ? DefaultModel.Load()
            : Directory.Exists(path) ? DiffusersFolder.Open(path).LoadOfficialTensors() : Checkpoint.Load(path);
        string fingerprint = BenchSession.Fingerprint(file);                          // before the weights are packed in place
        return (DitWeights.FromFile(file, heads, inputSize, exclusive: true, precision: precision), fingerprint);
    }

    /// <summary>The settings of the GEMM that every image depends on: the thread count only where it can matter.</summary>
    public static void AddGemm(IDictionary<string, string> settings, string gemmLabel, bool deterministic, int threads)
    {
        settings["gemm"] = gemmLabel;
        settings["deterministic"] = deterministic ? "true" : "false";
        settings["threads"] = deterministic ? "any" : threads.ToString(CultureInfo.InvariantCulture);
    }

    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    public static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);
}
