using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Cli.Tests;

/// <summary>The fixed <c>ditcache sample</c> contract, end to end on the tiny PyTorch fixture DiT.</summary>
public class SampleCommandTests
{
    private static Tensor Golden(string key) =>
        SafeTensors.Load(CliRunner.Data("dit", "tiny_dit_golden.safetensors")).Tensors[key];

    [Theory]
    [InlineData("tiny_dit.safetensors")]
    [InlineData("tiny_dit_train.pt")]                              // torch.save of {"ema": state_dict, "args": ...}
    public void InjectedNoiseReproducesThePyTorchDdimSample(string modelFile)
    {
        string dir = CliRunner.TempDir();
        string noise = Path.Combine(dir, "noise.safetensors");
        SafeTensors.Save(noise, new Dictionary<string, Tensor> { ["noise"] = Golden("ddim_noise") });
        string sample = Path.Combine(dir, "sample.safetensors"), report = Path.Combine(dir, "report.json");

        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.Data("dit", modelFile), "--classes", "3,7", "--steps", "10",
            "--sampler", "ddim", "--cfg", "4", "--noise", noise, "--save-tensor", sample, "--report", report, "--threads", "2",
            "--heads", "4", "--quiet");
        Assert.True(code == 0, err);

        Tensor got = SafeTensors.Load(sample).Tensors["sample"];
        Tensor want = Golden("ddim_sample");
        Assert.Equal(want.Shape, got.Shape);
        double scale = want.Data.Max(Math.Abs);
        double err2 = want.Data.Zip(got.Data, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(err2 <= 1e-4 * scale, $"max error {err2} vs scale {scale}");

        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        JsonElement root = doc.RootElement;
        JsonElement[] steps = root.GetProperty("steps").EnumerateArray().ToArray();
        Assert.Equal(10, steps.Length);
        Assert.Equal(Golden("ddim_timesteps").Data.Select(v => (int)v), steps.Select(s => s.GetProperty("t").GetInt32()));
        Assert.Equal(Enumerable.Range(0, 10), steps.Select(s => s.GetProperty("n").GetInt32()));
        Assert.All(steps, s => Assert.True(s.GetProperty("computed").GetBoolean()));
        Assert.True(root.GetProperty("flops").GetDouble() > 0);
        Assert.Equal(root.GetProperty("full_flops").GetDouble(), root.GetProperty("flops").GetDouble());
        Assert.True(root.GetProperty("seconds").GetDouble() > 0);
    }

    [Fact]
    public void ShadowReportCarriesSitesAndForecastErrors()
    {
        string dir = CliRunner.TempDir();
        string report = Path.Combine(dir, "report.json");
        var (code, output, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "3,7", "--steps", "12",
            "--cfg", "1.5", "--cache", "fora:n=3", "--shadow", "--report", report, "--threads", "1");
        Assert.True(code == 0, err);
        Assert.Contains("shadow: forecast relative L2 mean", output);

        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        JsonElement root = doc.RootElement;
        Assert.True(root.GetProperty("shadow").GetBoolean());
        JsonElement[] steps = root.GetProperty("steps").EnumerateArray().ToArray();
        Assert.Contains(steps, s => !s.GetProperty("computed").GetBoolean());
        foreach (JsonElement s in steps)
        {
            bool computed = s.GetProperty("computed").GetBoolean();
            Assert.Equal(computed ? "CCCC" : "FFFF", s.GetProperty("sites").GetString());
            Assert.All(s.GetProperty("shadow_rel_l2").EnumerateArray(), e =>
            {
                if (computed)
                {
                    Assert.Equal(JsonValueKind.Null, e.ValueKind);
                }
                else
                {
                    Assert.InRange(e.GetDouble(), 1e-9, 1.0);
                }
            });
            Assert.Equal(JsonValueKind.Null, s.GetProperty("shadow_blocks_rel_l2").ValueKind);
        }

        Assert.Equal(65536, root.GetProperty("cache_bytes").GetInt64());  // 2 blocks x 2 sites x (4 rows x 16 tokens x 64) floats
    }

    /// <summary>
    /// <c>--report-tokens</c> lists, per step and block, the tokens a token-wise cache recomputed in every row of the CFG
    /// batch. The run is the token-wise fixture's (tools/reference/make_tokenwise_fixtures.py: its noise, classes 3 and
    /// 7, DDIM 50, CFG 1.5 on all channels, the managed GEMM as the parity test), so the report must list exactly the
    /// reference's picks: k and the indices in order, for every partial MLP, mixed steps included, and nothing else.
    /// </summary>
    [Theory]
    [InlineData("toca:n=3,ratio=0.07", "toca_n3_ratio0p07")]
    [InlineData("duca:n=3,ratio=0.05,score=kv-norm", "duca_n3_ratio0p05_scorekv-norm")]
    public void ReportTokensListsTheReferencePicks(string spec, string prefix)
    {
        IReadOnlyDictionary<string, Tensor> golden = SafeTensors.Load(CliRunner.Data("dit", "tiny_dit_tokenwise_golden.safetensors")).Tensors;
        string dir = CliRunner.TempDir();
        string noise = Path.Combine(dir, "noise.safetensors"), report = Path.Combine(dir, "report.json");
        SafeTensors.Save(noise, new Dictionary<string, Tensor> { ["noise"] = golden["noise"] });
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "3,7", "--steps", "50",
            "--cfg", "1.5", "--cache", spec, "--noise", noise, "--report", report, "--report-tokens", "--gemm", "managed",
            "--threads", "2", "--quiet");
        Assert.True(code == 0, err);

        const int depth = 2, rows = 4, tokens = 16;
        float[] fresh = golden[$"{prefix}.fresh"].Data;                         // (50, depth), −1 where not partial
        float[] picked = golden[$"{prefix}.tokens"].Data;                       // (50, depth, rows, tokens), −1 padded
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        JsonElement root = doc.RootElement;
        Assert.True(root.GetProperty("tokens_recorded").GetBoolean());
        Assert.StartsWith("the CFG batch", root.GetProperty("token_rows").GetString());
        JsonElement[] steps = root.GetProperty("steps").EnumerateArray().ToArray();
        Assert.Equal(50, steps.Length);
        int lists = 0;
        for (int n = 0; n < steps.Length; n++)
        {
            int[] expectedBlocks = Enumerable.Range(0, depth).Where(l => fresh[(n * depth) + l] >= 0).ToArray();
            JsonElement[] entries = steps[n].GetProperty("tokens").EnumerateArray().ToArray();
            Assert.Equal(expectedBlocks, entries.Select(e => e.GetProperty("block").GetInt32()));
            foreach (JsonElement e in entries)
            {
                int l = e.GetProperty("block").GetInt32(), k = e.GetProperty("k").GetInt32();
                Assert.Equal((int)fresh[(n * depth) + l], k);
                JsonElement[] perRow = e.GetProperty("rows").EnumerateArray().ToArray();
                Assert.Equal(rows, perRow.Length);
                for (int b = 0; b < rows; b++)
                {
                    int at = (((n * depth) + l) * rows + b) * tokens;
                    Assert.Equal(picked.AsSpan(at, k).ToArray().Select(v => (int)v), perRow[b].EnumerateArray().Select(v => v.GetInt32()));
                    lists++;
                }
            }
        }

        Assert.True(lists > 100, $"only {lists} row lists compared");
    }

    [Fact]
    public void ReportTokensWithoutReportIsAUsageError()
    {
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--report-tokens", "--quiet");
        Assert.Equal(2, code);
        Assert.Contains("--report-tokens", err);
        Assert.Contains("--report FILE", err);
    }

    [Fact]
    public void ReportWithoutTokensCarriesNoTokenLists()
    {
        string dir = CliRunner.TempDir();
        string report = Path.Combine(dir, "report.json");
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "3", "--steps", "6",
            "--cache", "toca:n=3,ratio=0.5,sched=constant", "--report", report, "--threads", "1", "--quiet");
        Assert.True(code == 0, err);
        using JsonDocument doc = JsonDocument.Parse(File.ReadAllBytes(report));
        Assert.False(doc.RootElement.GetProperty("tokens_recorded").GetBoolean());
        Assert.Contains(doc.RootElement.GetProperty("steps").EnumerateArray(), s => s.GetProperty("sites").GetString()!.Contains('P'));
        Assert.All(doc.RootElement.GetProperty("steps").EnumerateArray(), s => Assert.False(s.TryGetProperty("tokens", out _)));
    }

    [Fact]
    public void LatentModelRefusesPngBeforeRunning()
    {
        string dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("VAE", err);
        Assert.Empty(Directory.GetFiles(dir));
    }

    public static TheoryData<string[], int, string> BadInputs => new()
    {
        { ["--model", "/no/such/model.safetensors"], 1, "/no/such/model.safetensors" },
        { ["--steps", "0"], 2, "--steps" },
        { ["--steps", "abc"], 2, "abc" },
        { ["--sampler", "euler"], 2, "euler" },
        { ["--cache", "warp:n=3"], 2, "warp" },
        { ["--cache", "none:n=3"], 2, "n" },
        { ["--classes", "3,x"], 2, "--classes" },
        { ["--classes", "3,10"], 2, "class 10" },
        { ["--cfg", "0.5"], 2, "--cfg" },
        { ["--cfg", "1,5"], 2, "--cfg '1,5' is not a number; write it like 1.5" },   // not 15: no group separators
        { ["--cfg", "1 5"], 2, "1 5" },
        { ["--eta", "NaN"], 2, "--eta NaN is not a finite double" },
        { ["--eta", "-Infinity"], 2, "--eta -Infinity is not a finite double" },
        { ["--cfg", "1e39"], 2, "--cfg 1e39 is not a finite float" },
        { ["--threads", "0"], 2, "--threads" },
        { ["--gemm", "cuda"], 2, "cuda" },
        { ["--report", "/no/such/dir/r.json"], 2, "/no/such/dir" },
        { ["--unknown-flag"], 2, "--unknown-flag" },
        { ["--save-tensor", CliRunner.TinyDit], 2, "is the file given to --model; write the output to another path" },
        { ["--report", "/tmp/ditcache-same.json", "--out", "/tmp/ditcache-same.json"], 2, "--report /tmp/ditcache-same.json is also the path of --out; give each output its own path" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadFlagsGiveOneLineAndAnExitCode(string[] flags, int exitCode, string mentioned)
    {
        string[] args = ["sample", .. flags.Contains("--model") ? flags : ["--model", CliRunner.TinyDit, .. flags], "--quiet"];
        var (code, _, err) = CliRunner.Run(args);
        Assert.Equal(exitCode, code);
        Assert.Contains(mentioned, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.DoesNotContain("   at ", err);
    }

    [Theory]
    [InlineData("wrong_shape")]
    [InlineData("wrong_key")]
    [InlineData("nan")]
    public void BadNoiseFileLeavesNoOutput(string kind)
    {
        string dir = CliRunner.TempDir();
        string noise = Path.Combine(dir, "noise.safetensors");
        Tensor values = kind == "nan" ? Tensor.Zeros(2, 4, 8, 8) : Tensor.Zeros(3, 4, 8, 8);
        if (kind == "nan")
        {
            values.Data[(1 * 4 * 8 * 8) + (2 * 8 * 8) + (3 * 8) + 5] = float.NaN;    // image 1, channel 2, row 3, column 5
        }

        SafeTensors.Save(noise, new Dictionary<string, Tensor> { [kind == "wrong_key" ? "x" : "noise"] = values });
        string sample = Path.Combine(dir, "sample.safetensors");
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.TinyDit, "--classes", "1,2", "--steps", "2", "--noise", noise,
            "--save-tensor", sample, "--quiet");
        Assert.Equal(1, code);
        Assert.Contains("--noise", err);
        Assert.Contains(kind switch { "wrong_key" => "no tensor \"noise\"", "nan" => "holds NaN at [1, 2, 3, 5]", _ => "[2, 4, 8, 8]" }, err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Equal([noise], Directory.GetFiles(dir));
    }

    [Fact]
    public void DeterministicGivesTheSameBytesAtEveryThreadCount()
    {
        string dir = CliRunner.TempDir();
        byte[]? first = null;
        foreach (string threads in new[] { "1", "2", "3" })
        {
            string path = Path.Combine(dir, $"t{threads}.safetensors");
            var (code, _, err) = CliRunner.Run("sample", "--classes", "0,1,2,3,4", "--steps", "6", "--cache", "foca:n=3",
                "--threads", threads, "--deterministic", "--save-tensor", path, "--quiet");
            Assert.True(code == 0, err);
            byte[] bytes = File.ReadAllBytes(path);
            first ??= bytes;
            Assert.True(first.AsSpan().SequenceEqual(bytes), $"--threads {threads} differs from --threads 1");
        }

        var (refused, _, message) = CliRunner.Run("sample", "--classes", "1", "--deterministic", "--gemm", "openblas", "--quiet");
        Assert.Equal(2, refused);
        Assert.Contains("--deterministic with --gemm openblas", message);
    }

    [Fact]
    public void SixteenBitWeightsSampleCloseToFloat32AndAreReportedAndRefusedWhereTheyCannotRun()
    {
        string dir = CliRunner.TempDir();
        var samples = new Dictionary<string, float[]>();
        foreach (string weights in new[] { "f32", "bf16", "f16" })
        {
            string path = Path.Combine(dir, $"{weights}.safetensors"), report = Path.Combine(dir, $"{weights}.json");
            var (code, _, err) = CliRunner.Run("sample", "--classes", "0,7", "--steps", "6", "--cache", "foca:n=3", "--weights", weights,
                "--save-tensor", path, "--report", report, "--quiet");
            Assert.True(code == 0, err);
            samples[weights] = SafeTensors.Load(path).Tensors["sample"].Data;
            Assert.Contains($"\"weights\": \"{weights}\"", File.ReadAllText(report));
        }

        // The shipped model's samples lie in [-1, 1]; 16-bit weights move them by far less than that, but they do move.
        foreach (string weights in new[] { "bf16", "f16" })
        {
            double max = samples["f32"].Zip(samples[weights], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(max > 0 && max < 0.25, $"--weights {weights}: max |difference| to f32 {max}");
        }

        var (refused, _, message) = CliRunner.Run("sample", "--classes", "1", "--weights", "bf16", "--gemm", "openblas", "--quiet");
        Assert.Equal(2, refused);
        Assert.Contains("--weights bf16 with --gemm openblas", message);
        (refused, _, message) = CliRunner.Run("sample", "--classes", "1", "--weights", "f16", "--gemm", "managed-bf16", "--quiet");
        Assert.Equal(2, refused);
        Assert.Contains("--weights f16 with --gemm managed-bf16", message);
        (refused, _, message) = CliRunner.Run("sample", "--classes", "1", "--weights", "int8", "--quiet");
        Assert.Equal(2, refused);
        Assert.Contains("--weights 'int8'", message);
        Assert.Single(message.TrimEnd().Split('\n'));
    }

    [Fact]
    public void DivergingSamplingExits1NamingTheStepAndLeavesNoOutput()
    {
        // DDIM with η = 1e30: σ² exceeds 1 − ᾱ_prev, the square root of a negative number is NaN at the first step.
        string dir = CliRunner.TempDir();
        string png = Path.Combine(dir, "out.png"), sample = Path.Combine(dir, "sample.safetensors");
        var (code, output, err) = CliRunner.Run("sample", "--classes", "1,2", "--steps", "4", "--eta", "1e30", "--cache", "fora:n=2",
            "--out", png, "--save-tensor", sample);
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Contains("sampling diverged at step 0 of 4 (timestep 999, cache fora:n=2): the sample holds NaN at [0, 0, 0, 0]", err);
        Assert.Contains("--cache none", err);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void NonFiniteWeightsAreRefusedByEveryCommand()
    {
        string dir = CliRunner.TempDir();
        string model = Path.Combine(dir, "inf.safetensors");
        TensorFile tiny = SafeTensors.Load(CliRunner.TinyDit);
        var tensors = tiny.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        Tensor fc2 = tensors["blocks.1.mlp.fc2.weight"];
        float[] data = [.. fc2.Data];
        data[(5 * fc2.Dim(1)) + 7] = float.NegativeInfinity;                          // row 5, column 7
        tensors["blocks.1.mlp.fc2.weight"] = new Tensor(data, fc2.Shape);
        SafeTensors.Save(model, tensors, tiny.Metadata);
        string[][] commands =
        [
            ["sample", "--model", model, "--classes", "1", "--steps", "2", "--quiet"],
            ["bench", "--model", model, "--cache", "none steps=2", "--samples", "10", "--steps", "2", "--out", Path.Combine(dir, "bench"), "--quiet"],
            ["info", "--model", model],
        ];
        foreach (string[] args in commands)
        {
            var (code, _, err) = CliRunner.Run(args);
            Assert.True(code == 1, $"{args[0]}: exit {code}, {err}");
            Assert.Contains("tensor 'blocks.1.mlp.fc2.weight' holds -Infinity at [5, 7]", err);
            Assert.Single(err.TrimEnd().Split('\n'));
        }
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("lying_offsets")]
    [InlineData("forbidden_pickle")]
    public void CorruptModelsAreRefused(string kind)
    {
        string dir = CliRunner.TempDir();
        string model = Path.Combine(dir, "model.safetensors");
        byte[] good = File.ReadAllBytes(CliRunner.TinyDit);
        switch (kind)
        {
            case "truncated":
                File.WriteAllBytes(model, good[..(good.Length / 2)]);
                break;
            case "lying_offsets":
                string text = System.Text.Encoding.UTF8.GetString(good, 8, (int)BitConverter.ToUInt64(good, 0));
                int at = text.IndexOf("\"data_offsets\":[0,", StringComparison.Ordinal);
                Assert.True(at >= 0);
                byte[] bad = (byte[])good.Clone();
                bad[8 + at + "\"data_offsets\":[".Length] = (byte)'1';           // begin 0 -> 1: size no longer matches
                File.WriteAllBytes(model, bad);
                break;
            default:
                model = CliRunner.Data("io", "forbidden_global.pt");
                break;
        }

        string sample = Path.Combine(dir, "out.safetensors");
        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--steps", "2", "--save-tensor", sample, "--quiet");
        Assert.Equal(1, code);
        Assert.Contains(model, err);
        Assert.False(File.Exists(sample));
    }

    [Fact]
    public void A_failing_output_leaves_every_other_output_as_it_was()
    {
        if (!File.Exists("/dev/full"))
        {
            return;                                                                     // Linux only; CI runs Linux
        }

        string dir = CliRunner.TempDir();
        string sample = Path.Combine(dir, "sample.safetensors"), png = Path.Combine(dir, "out.png");
        File.WriteAllText(sample, "an earlier run's tensor");
        var (code, _, err) = CliRunner.Run("sample", "--classes", "1", "--steps", "2", "--threads", "1", "--quiet",
            "--save-tensor", sample, "--out", png, "--report", "/dev/full");
        Assert.Equal(1, code);
        Assert.StartsWith("ditcache: error: --report /dev/full: cannot write", err, StringComparison.Ordinal);
        Assert.Equal("an earlier run's tensor", File.ReadAllText(sample));              // not replaced
        Assert.Equal([sample], Directory.GetFiles(dir));                                // no PNG, no temporaries
    }

    [Fact]
    public void A_batch_beyond_the_machine_is_a_clean_error()
    {
        // 60,000 images of the 28x28 model at CFG: 120,000 rows of 49 tokens x 4*128 MLP hidden floats pass an array.
        string classes = string.Join(',', Enumerable.Repeat("1", 60_000));
        var (code, _, err) = CliRunner.Run("sample", "--classes", classes, "--steps", "1", "--threads", "1", "--quiet");
        Assert.Equal(1, code);
        Assert.Contains("a batch of 120000 rows of", err, StringComparison.Ordinal);
        Assert.Contains("sample fewer images at once", err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", err, StringComparison.Ordinal);
    }
}
