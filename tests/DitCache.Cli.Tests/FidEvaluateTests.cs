using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json.Nodes;
using DitCache.Evaluation.Inception;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>
/// <c>ditcache evaluate --inception --fid-stats</c> end to end on the tiny latent pipeline (tiny DiT + tiny VAE folder)
/// with the FID Inception's real shapes on hashed weights: one process against two shards merged (the FID equal to
/// 1e-9 relative), and the one-line refusals.
/// </summary>
public class FidEvaluateTests
{
    private static readonly Lazy<string> Weights = new(() =>
    {
        string path = Path.Combine(CliRunner.TempDir(), "fid_inception_hashed.safetensors");
        TensorFile hashed = InceptionWeights.HashedFile();
        SafeTensors.Save(path, hashed.Entries.Keys.ToDictionary(k => k, k => hashed.Read(k), StringComparer.Ordinal));
        return path;
    });

    /// <summary>An .npz as numpy's savez writes it (stored entries, .npy v1.0 headers): mu = 0.5, sigma = 0.25·I, plus an unused arr_0.</summary>
    private static string StatsFile(string dir, bool withSigma = true)
    {
        string path = Path.Combine(dir, withSigma ? "stats.npz" : "nosigma.npz");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string name, int[] shape, double[] values)
        {
            string dict = $"{{'descr': '<f8', 'fortran_order': False, 'shape': ({string.Join(", ", shape)}{(shape.Length == 1 ? "," : "")}), }}";
            int total = 10 + dict.Length + 1;
            string header = dict + new string(' ', (64 - (total % 64)) % 64) + "\n";
            using Stream s = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
            s.Write([0x93, .. "NUMPY"u8, 1, 0, (byte)(header.Length & 0xFF), (byte)(header.Length >> 8)]);
            s.Write(Encoding.ASCII.GetBytes(header));
            s.Write(MemoryMarshal.AsBytes(values.AsSpan()));
        }

        Add("arr_0", [2, 2], [1, 2, 3, 4]);
        Add("mu", [2048], [.. Enumerable.Repeat(0.5, 2048)]);
        if (withSigma)
        {
            double[] sigma = new double[2048 * 2048];
            for (int i = 0; i < 2048; i++)
            {
                sigma[(i * 2048) + i] = 0.25;
            }

            Add("sigma", [2048, 2048], sigma);
        }

        return path;
    }

    [Fact]
    public void Fid_of_one_process_equals_two_shards_merged()
    {
        string model = CliRunner.PipelineFolder(), dir = CliRunner.TempDir(), stats = StatsFile(dir), report = Path.Combine(dir, "fid.json");
        string[] common = ["evaluate", "--model", model, "--inception", Weights.Value, "--fid-stats", stats, "--classes", "3,7",
            "--samples-per-class", "3", "--steps", "4", "--batch", "2", "--threads", "1", "--quiet"];
        var (code, _, err) = CliRunner.Run([.. common, "--report", report]);
        Assert.True(code == 0, err);
        JsonNode one = JsonNode.Parse(File.ReadAllText(report))!;
        double fid = one["fid"]!.GetValue<double>();
        Assert.True(fid > 0 && double.IsFinite(fid), $"fid {fid}");
        Assert.Equal(6, one["samples"]!.GetValue<int>());

        string shards = Path.Combine(dir, "shards"), merged = Path.Combine(dir, "merged");
        foreach (string k in new[] { "1/2", "0/2" })
        {
            (code, _, err) = CliRunner.Run([.. common, "--shard", k, "--out-dir", shards]);
            Assert.True(code == 0, err);
        }

        (code, _, err) = CliRunner.Run("merge", shards, "--out", merged, "--quiet");
        Assert.True(code == 0, err);
        JsonNode metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "metrics.json")))!;
        double mergedFid = metrics["frechet_distance"]!.GetValue<double>();
        Assert.True(Math.Abs(mergedFid - fid) <= 1e-9 * fid, $"merged {mergedFid.ToString("R", CultureInfo.InvariantCulture)} vs one process {fid.ToString("R", CultureInfo.InvariantCulture)}");
        Assert.Null(metrics["accuracy"]);
        Assert.Null(metrics["floor_frechet_distance"]);
        Assert.Equal(6, metrics["images"]!.GetValue<int>());
    }

    [Fact]
    public void Fid_flags_are_refused_in_one_line_naming_what_to_fix()
    {
        string model = CliRunner.PipelineFolder(), dir = CliRunner.TempDir(), stats = StatsFile(dir);
        string[] tiny = ["--model", model, "--classes", "3", "--samples-per-class", "2", "--steps", "2", "--quiet"];
        (string[] Args, string Fragment)[] cases =
        [
            (["evaluate", .. tiny, "--inception", Weights.Value], "--inception " + Weights.Value + " needs --fid-stats FILE"),
            (["evaluate", .. tiny, "--fid-stats", stats], "needs --inception FILE"),
            (["evaluate", "--vae", Path.Combine(model, "vae"), "--samples-per-class", "2"], "needs --inception and --fid-stats"),
            (["evaluate", .. tiny, "--inception", Weights.Value, "--fid-stats", StatsFile(dir, withSigma: false)], "sigma"),
            (["evaluate", .. tiny, "--inception", Path.Combine(dir, "none.pth"), "--fid-stats", stats], "--inception " + Path.Combine(dir, "none.pth") + ": no such file"),
            (["evaluate", "--samples-per-class", "2", "--steps", "2", "--inception", Weights.Value, "--fid-stats", stats], "RGB"),
            (["evaluate", "--model", model, "--classes", "12", "--samples-per-class", "2", "--steps", "2", "--inception", Weights.Value, "--fid-stats", stats], "--classes: class 12 is out of range"),
        ];
        foreach ((string[] args, string fragment) in cases)
        {
            var (code, _, err) = CliRunner.Run(args);
            Assert.True(code == 2, $"{string.Join(' ', args)}: exit {code}, {err}");
            Assert.Contains(fragment, err, StringComparison.Ordinal);
            Assert.Single(err.Trim().Split('\n'));
        }
    }
}
