using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading;
using DitCache.Evaluation.Shards;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>
/// Sharded runs through the real CLI binary (<c>dotnet ditcache.dll</c>, one process per shard): four shards, one
/// killed in the middle and restarted, merged, against one process; and the sample command's shards against its
/// one-shard run.
/// </summary>
public sealed class ShardedRunTests
{
    private static readonly string Binary = Path.Combine(AppContext.BaseDirectory, "ditcache.dll");

    private static Process Start(IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Binary);
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        return Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
    }

    private static (int Code, string Out, string Err) Finish(Process p)
    {
        using (p)
        {
            var err = p.StandardError.ReadToEndAsync();
            string stdout = p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(300_000), "a shard process ran over 5 minutes");
            return (p.ExitCode, stdout, err.Result);
        }
    }

    private static int ManifestLines(string folder)
    {
        string path = Path.Combine(folder, ShardStore.ManifestFile);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd().Count(ch => ch == '\n');
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
        catch (DirectoryNotFoundException)
        {
            return 0;
        }
    }

    [FashionMnistFact]
    public void Four_shard_processes_one_killed_and_restarted_merge_to_the_one_process_run()
    {
        // 136 images (more than the 128 feature dimensions, so both covariances have full rank and the Frechet
        // distance is well conditioned), 34 batches of 4, 3 DDIM steps: seconds per process on the shipped model.
        string[] run = ["evaluate", "--classes", "3,7", "--samples-per-class", "68", "--steps", "3", "--batch", "4", "--threads", "1", "--quiet"];
        const int Images = 136;
        string dir = CliRunner.TempDir(), shards = Path.Combine(dir, "shards"), merged = Path.Combine(dir, "merged");

        // Shard 2 runs batches 2, 6, ..., 34: 32 images. Kill it once it has finished some of them.
        string folder2 = Path.Combine(shards, "shard-2-of-4");
        Directory.CreateDirectory(shards);
        using (Process victim = Start([.. run, "--shard", "2/4", "--out-dir", shards]))
        {
            var clock = Stopwatch.StartNew();
            while (ManifestLines(folder2) == 0 && !victim.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2))
            {
                Thread.Sleep(5);
            }

            if (victim.HasExited)
            {
                Assert.Fail($"shard 2/4 ended (exit {victim.ExitCode}) before it could be killed: {victim.StandardError.ReadToEnd()}");
            }

            victim.Kill();
            victim.WaitForExit();
        }

        int before = ManifestLines(folder2);
        Assert.InRange(before, 1, 31);                                   // killed in the middle

        // A process that holds the shard's lock keeps a second one out, before it writes anything.
        using (new FileStream(Path.Combine(folder2, ShardStore.LockFile), FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        {
            (int code, string stdout, string err) = Finish(Start([.. run, "--shard", "2/4", "--out-dir", shards]));
            Assert.Equal(1, code);
            Assert.Equal("", stdout);
            Assert.Single(err.TrimEnd().Split('\n'));
            Assert.Contains($"--shard 2/4: {Path.Combine(folder2, ShardStore.LockFile)} is held by", err, StringComparison.Ordinal);
            Assert.Equal(before, ManifestLines(folder2));
        }

        // The other three and the restarted one, as four processes at once; then merge.
        Process[] rest = [.. new[] { "0/4", "1/4", "3/4" }.Select(s => Start([.. run, "--shard", s, "--out-dir", shards])),
            Start([.. run.Where(a => a != "--quiet"), "--shard", "2/4", "--out-dir", shards])];
        var results = rest.Select(Finish).ToArray();
        Assert.All(results, r => Assert.True(r.Code == 0, r.Err));
        Assert.Contains($"32 image(s) done ({before} from before", results[3].Out, StringComparison.Ordinal);
        (int mergeCode, _, string mergeErr) = Finish(Start(["merge", shards, "--out", merged, "--quiet", "--png"]));
        Assert.True(mergeCode == 0, mergeErr);
        string[] pngs = Directory.GetFiles(Path.Combine(merged, ShardMerge.PngFolder), "*.png");
        Assert.Equal(Images, pngs.Length);
        Assert.All(pngs, p => Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, File.ReadAllBytes(p)[..4]));

        // One process, sharded as one: the same files byte for byte.
        string one = Path.Combine(dir, "one");
        (int oneCode, _, string oneErr) = Finish(Start([.. run, "--out-dir", one]));
        Assert.True(oneCode == 0, oneErr);
        for (int i = 0; i < Images; i++)
        {
            string name = ShardStore.ItemName(i);
            Assert.True(File.ReadAllBytes(Path.Combine(one, "shard-0-of-1", name)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(merged, name))), $"image {i} differs");
        }

        // One process, not sharded (its report): FD to 1e-9 relative (the merge sums float64 statistics; the
        // one-process run takes two passes over all features), accuracy exactly.
        string reportPath = Path.Combine(dir, "report.json");
        (int classic, _, string classicErr) = CliRunner.Run([.. run, "--report", reportPath]);
        Assert.True(classic == 0, classicErr);
        JsonNode report = JsonNode.Parse(File.ReadAllText(reportPath))!;
        JsonNode metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, ShardMerge.MetricsFile)))!;
        double fdOne = report["frechet_distance"]!["generated_vs_test"]!.GetValue<double>();
        double fdMerged = metrics["frechet_distance"]!.GetValue<double>();
        Assert.True(Math.Abs(fdMerged - fdOne) <= 1e-9 * fdOne, $"merged FD {fdMerged:R} vs one process {fdOne:R}");
        Assert.Equal(report["accuracy"]!.GetValue<double>(), metrics["accuracy"]!.GetValue<double>());
        Assert.Equal(Images, metrics["images"]!.GetValue<int>());
    }

    [Fact]
    public void Sample_shards_in_any_split_equal_the_one_shard_run()
    {
        // The tiny fixture DiT (8x8x4 latents, 2 classes would do; it has more): 11 images in batches of 3.
        string dir = CliRunner.TempDir();
        string[] run = ["sample", "--model", CliRunner.TinyDit, "--classes", "0,1", "--samples", "11", "--batch", "3", "--steps", "3", "--threads", "1", "--quiet"];
        Assert.Equal(0, CliRunner.Run([.. run, "--out-dir", Path.Combine(dir, "one")]).Code);
        foreach (string s in new[] { "0/3", "1/3", "2/3" })
        {
            (int code, _, string err) = CliRunner.Run([.. run, "--shard", s, "--out-dir", Path.Combine(dir, "three")]);
            Assert.True(code == 0, err);
        }

        (int m, _, string mergeErr) = CliRunner.Run("merge", Path.Combine(dir, "three"), "--out", Path.Combine(dir, "merged"), "--quiet");
        Assert.True(m == 0, mergeErr);
        for (int i = 0; i < 11; i++)
        {
            string name = ShardStore.ItemName(i);
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "one", "shard-0-of-1", name)), File.ReadAllBytes(Path.Combine(dir, "merged", name)));
        }

        // Latents without a VAE have no PNG form.
        (int noPng, _, string pngErr) = CliRunner.Run("merge", Path.Combine(dir, "three"), "--out", Path.Combine(dir, "png"), "--png");
        Assert.Equal(2, noPng);
        Assert.Contains("4-channel latent and no decoded image; run the shards with --vae", pngErr, StringComparison.Ordinal);

        // Classes cycle through --classes; each file says which.
        var file = DitCache.Tensors.IO.SafeTensors.Load(Path.Combine(dir, "merged", ShardStore.ItemName(5)));
        Assert.Equal("1", file.Metadata["label"]);
        Assert.True(file.Read("sample").HasShape(1, 4, 8, 8), file.Read("sample").ShapeText);

        // A rerun of a finished shard does nothing and says so.
        (int again, string stdout, _) = CliRunner.Run([.. run.Where(a => a != "--quiet"), "--shard", "1/3", "--out-dir", Path.Combine(dir, "three")]);
        Assert.Equal(0, again);
        Assert.Contains("0 batch(es) run now", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_shards_split_the_configurations_and_merge_to_the_one_process_scores()
    {
        // Tiny fixture DiT, 10 images, four configurations: the reference runs in both shards, the three others
        // alternate (fora and taylorseer in shard 0, foca in shard 1).
        string dir = CliRunner.TempDir();
        string[] run = ["bench", "--model", CliRunner.TinyDit, "--cache", "none", "--cache", "fora:n=2", "--cache", "foca:n=2", "--cache", "taylorseer:n=2",
            "--samples", "10", "--steps", "4", "--repeats", "1", "--shadow-images", "0", "--threads", "1", "--quiet"];
        string shards = Path.Combine(dir, "shards"), merged = Path.Combine(dir, "merged");
        Assert.Equal(0, CliRunner.Run([.. run, "--shard", "0/2", "--out", shards]).Code);

        (int gap, _, string gapErr) = CliRunner.Run("merge", shards, "--out", merged);
        Assert.Equal(1, gap);
        Assert.Contains("configuration 'foca:n=2|steps=4|cfg=4' of the plan is in none of the shards", gapErr, StringComparison.Ordinal);

        Assert.Equal(0, CliRunner.Run([.. run, "--shard", "1/2", "--out", shards]).Code);
        JsonNode shard1 = JsonNode.Parse(File.ReadAllText(Path.Combine(shards, "shard-1-of-2", "results.json")))!;
        Assert.Equal(["none", "foca:n=2"], shard1["entries"]!.AsArray().Select(e => e!["config"]!["cache"]!.GetValue<string>()));
        (int m, _, string mergeErr) = CliRunner.Run("merge", shards, "--out", merged, "--quiet");
        Assert.True(m == 0, mergeErr);
        Assert.True(File.Exists(Path.Combine(merged, "report.html")));

        string one = Path.Combine(dir, "one");
        Assert.Equal(0, CliRunner.Run([.. run, "--out", one]).Code);
        JsonNode a = JsonNode.Parse(File.ReadAllText(Path.Combine(merged, "results.json")))!;
        JsonNode b = JsonNode.Parse(File.ReadAllText(Path.Combine(one, "results.json")))!;
        var ea = a["entries"]!.AsArray();
        var eb = b["entries"]!.AsArray();
        Assert.Equal(4, ea.Count);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(eb[i]!["config"]!.ToJsonString(), ea[i]!["config"]!.ToJsonString());
            foreach (string key in new[] { "psnr", "ssim", "relative_l2", "flops", "strip", "timeline" })
            {
                Assert.True(JsonNode.DeepEquals(eb[i]![key], ea[i]![key]), $"{key} of {ea[i]!["config"]!.ToJsonString()} differs");
            }
        }
    }

    [Theory]
    [InlineData("--shard 1/4", "--shard 1/4 writes one file per image; give --out-dir DIR")]
    [InlineData("--samples 8", "--samples writes one file per image; give --out-dir DIR")]
    [InlineData("--shard 4/4 --out-dir OUT", "--shard '4/4' is not a shard")]
    [InlineData("--out-dir OUT --out OUT/x.png", "--out does not apply with --out-dir")]
    [InlineData("--out-dir OUT --noise n.safetensors", "--noise does not apply with --out-dir")]
    [InlineData("--out-dir OUT --report r.json", "--report does not apply with --out-dir")]
    public void Sample_bad_shard_flags_exit_2_with_one_line(string flags, string expected)
    {
        string dir = CliRunner.TempDir();
        string[] args = [.. "sample --model".Split(' '), CliRunner.TinyDit, .. flags.Replace("OUT", dir, StringComparison.Ordinal).Split(' ')];
        (int code, string stdout, string stderr) = CliRunner.Run(args);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--shard 0/2", "--shard 0/2 needs --out-dir DIR")]
    [InlineData("--out-dir OUT --grid OUT/g.png", "--grid does not apply with --out-dir")]
    [InlineData("--out-dir OUT --report OUT/r.json", "--report does not apply with --out-dir")]
    public void Evaluate_bad_shard_flags_exit_2_with_one_line(string flags, string expected)
    {
        string dir = CliRunner.TempDir();
        (int code, string stdout, string stderr) = CliRunner.Run(["evaluate", .. flags.Replace("OUT", dir, StringComparison.Ordinal).Split(' ')]);
        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.Single(stderr.TrimEnd().Split('\n'));
        Assert.Contains(expected, stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_of_a_folder_without_shards_is_a_usage_error()
    {
        string dir = CliRunner.TempDir();
        (int code, _, string stderr) = CliRunner.Run("merge", dir, "--out", Path.Combine(dir, "m"));
        Assert.Equal(2, code);
        Assert.Contains("holds no shard", stderr, StringComparison.Ordinal);
    }
}
