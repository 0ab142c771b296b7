using System;
using System.IO;
using System.Linq;
using DitCache.Caching.Calibration;
using DitCache.Tensors;
using DitCache.Tests;
using Xunit;

namespace DitCache.Caching.Tests;

/// <summary>
/// TeaCache, MagCache and SmoothCache decision rules on analytic inputs whose schedules are derived by hand in the
/// comments (docs/methods.md §5.5, §5.7, §5.8), the polynomial fit on exact data, and the calibration file's round trip and
/// error messages.
/// </summary>
public class CalibratedPolicyTests
{
    private static readonly CalibrationRun s_run10 = new("ddim", 10, 1.5, 2, 0, "test");

    private static bool[] Bools(string pattern) => pattern.Select(ch => ch == '1').ToArray();

    // ---------------------------------------------------------------------------------------------------- TeaCache

    [Fact]
    public void TeaCacheAccumulatesThePolynomialAndResetsWhenItReachesL()
    {
        // poly(x) = x, l = 0.25; rel_n for n = 1 … 9. acc: n1 .1 skip, n2 .2 skip, n3 .3 compute (reset), n4 .3 compute,
        // n5 .05, n6 .1, n7 .15, n8 .2 skip, n9 last step: compute.
        double[] rel = [0.1, 0.1, 0.1, 0.3, 0.05, 0.05, 0.05, 0.05, 0.2];
        bool[] full = new TeaCacheOptions(0.25).Decide([0, 0, 0, 1, 0], rel);
        Assert.Equal(Bools("1001100001"), full);
    }

    [Fact]
    public void TeaCacheUsesHighestDegreeFirstCoefficients()
    {
        // poly(x) = 0.1 regardless of rel (constant term last, np.poly1d order): every third step computes.
        Assert.Equal(Bools("1001001001"), new TeaCacheOptions(0.25).Decide([0, 0, 0, 0, 0.1], new double[9]));
        // poly(x) = 10·x² with rel 0.1: 0.1 per step, the same schedule; [0.1, 0, 0, 0, 0] read lowest first would be 1e-5.
        Assert.Equal(Bools("1001001001"), new TeaCacheOptions(0.25).Decide([0, 0, 10, 0, 0], Enumerable.Repeat(0.1, 9).ToArray()));
        Assert.Equal(6.0, PolyFit.Evaluate([1, 2, 3], 1), 12);              // x² + 2x + 3
        Assert.Equal(11.0, PolyFit.Evaluate([1, 2, 3], 2), 12);
    }

    [Fact]
    public void TeaCacheSkipsTheStackWithTheLastComputedResidual()
    {
        // Indicator I_n = 1.1^n everywhere, so rel = 0.1 each step; poly(x) = x, l = 0.25 → computes 0, 3, 6, 9.
        // Stack: input x_n = n, output x_n + 10·n, so R after computed step m is 10·m; a skipped step emits n + 10·m.
        const int steps = 10, depth = 3;
        var run = new CacheRunInfo(steps, new float[steps], 1, 37, 1, depth, Calibration(coefficients: [0, 0, 0, 1, 0]), "ddim", 1.5);
        ICachePolicy policy = new TeaCacheOptions(0.25).Build(run);
        Assert.True(policy.WantsModulatedInput);
        var x = new float[37];
        int lastComputed = -1;
        for (int n = 0; n < steps; n++)
        {
            policy.BeginStep(n, 0);
            policy.ObserveModulatedInput(Enumerable.Repeat((float)Math.Pow(1.1, n), 37).ToArray());
            Array.Fill(x, n);
            int next = policy.SkipBlocks(0, x);
            if (next == 0)
            {
                policy.RecordBlock(0, x);                                      // not the last block: ignored
                Array.Fill(x, n + (10f * n));
                policy.RecordBlock(depth - 1, x);
                lastComputed = n;
            }
            else
            {
                Assert.Equal(depth, next);
                Assert.All(x, v => Assert.Equal(n + (10f * lastComputed), v));
            }

            Assert.Equal(n % 3 == 0, next == 0);
        }
    }

    // ---------------------------------------------------------------------------------------------------- MagCache

    [Fact]
    public void MagCacheAccumulatesRatioAndErrorUpToK()
    {
        // S = 10, retention 0.2 → int(2.5) = 2 retained steps; thresh 0.25, K = 2.
        // n2: ratio 1.1, err .1, run 1 skip; n3: ratio 1.1, err .2, run 2 skip; n4: run 3 > K compute (reset);
        // n5: ratio .5, err .5 compute (reset); n6, n7: ratio 1, err 0 skip; n8: run 3 compute; n9: skip.
        double[] gamma = [1, 1, 1.1, 1.0, 1.0, 0.5, 1, 1, 1, 1];
        Assert.Equal(Bools("1100110010"), new MagCacheOptions(0.25, 2, 0.2).FullSteps(gamma));
        // With no retention step 0 still computes (there is no residual yet).
        Assert.True(new MagCacheOptions(10, 100, 0).FullSteps(gamma)[0]);
        Assert.Equal(1, new MagCacheOptions(10, 100, 0).FullSteps(gamma).Count(f => f));
    }

    [Fact]
    public void MagCacheInterpolatesToTheNearestCalibratedStep()
    {
        // round(arange(S)·(L−1)/(S−1)), numpy rounding (half to even): L = 3, S = 5 → 0, 0.5, 1, 1.5, 2 → 0, 0, 1, 2, 2.
        Assert.Equal([10, 10, 11, 12, 12], MagCacheOptions.Interpolate([10, 11, 12], 5));
        Assert.Equal([10, 12], MagCacheOptions.Interpolate([10, 11, 12], 2));
        // L = 5, S = 3: 0, 2, 4.
        Assert.Equal([1, 3, 5], MagCacheOptions.Interpolate([1, 2, 3, 4, 5], 3));
    }

    [Fact]
    public void MagCacheBuildsFromAnotherStepCountAndSkipsWithTheResidual()
    {
        var run = new CacheRunInfo(20, new float[20], 1, 37, 1, 2, Calibration(), "ddim", 1.5);
        var policy = (MagCache)new MagCacheOptions(0.3).Build(run);                   // 10-step γ mapped to 20 steps
        var x = new float[37];
        policy.BeginStep(0, 0);
        Array.Fill(x, 1f);
        Assert.Equal(0, policy.SkipBlocks(0, x));
        Array.Fill(x, 4f);
        policy.RecordBlock(1, x);                                                     // r = 3
        policy.BeginStep(1, 0);
        Array.Fill(x, 2f);
        Assert.Equal(0, policy.SkipBlocks(0, x));                                     // retained: int(0.1·20 + 0.5) = 2
        policy.RecordBlock(1, x);                                                     // r = 0 now
        policy.BeginStep(2, 0);
        Array.Fill(x, 5f);
        Assert.Equal(2, policy.SkipBlocks(0, x));                                     // γ = 1: skip
        Assert.All(x, v => Assert.Equal(5f, v));
    }

    // ------------------------------------------------------------------------------------------------- SmoothCache

    [Fact]
    public void SmoothCacheScansTheLongestLookaheadFirst()
    {
        // L = 3, S = 10, α = 0.2. i = 0: row 3 fits → compute 0, reuse 1 … 3; i = 4: rows 3, 2 miss, row 1 fits →
        // compute 4, reuse 5; i = 6 … 9: nothing fits → compute.
        double[][] rows = [[1, 1, 1, 1, 0.1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1], [0.1, 1, 1, 1, 1, 1, 1]];
        Assert.Equal(Bools("1000101111"), new SmoothCacheOptions(0.2).Schedule(rows, 10));
        // α equal to a row value still qualifies (≤).
        Assert.Equal(Bools("1000101111"), new SmoothCacheOptions(0.1).Schedule(rows, 10));
        Assert.Equal(Bools("1111111111"), new SmoothCacheOptions(0.09).Schedule(rows, 10));
    }

    [Fact]
    public void SmoothCacheForcesTheLastStep()
    {
        // L = 1, every error 0: compute, reuse, compute, … ; the reuse that would fall on step 9 is overridden.
        double[][] rows = [new double[9]];
        Assert.Equal(Bools("1010101011"), new SmoothCacheOptions(0.1).Schedule(rows, 10));
    }

    [Fact]
    public void SmoothCacheReusesPerComponentType()
    {
        // attention: row 1 fits everywhere → 1010101011; MLP: nothing fits → every step.
        var run = new CacheRunInfo(10, new float[10], 1, SeamHarness.Length, 1, SeamHarness.Depth,
            Calibration(attn: [new double[9]], mlp: [Enumerable.Repeat(1.0, 9).ToArray()]), "ddim", 1.5);
        ICachePolicy policy = new SmoothCacheOptions(0.1).Build(run);
        (bool[] computed, float[][][] outputs) = SeamHarness.Drive(policy, 10, (n, site, i) => (100 * n) + site.Index + i);
        Assert.Equal(Bools("1010101011"), computed);
        Assert.Equal(202f, outputs[3][new FeatureSite(1, Site.Attn).Index][0]);        // step 2's attention output reused
        Assert.Equal(303f, outputs[3][new FeatureSite(1, Site.Mlp).Index][0]);         // MLP computed
    }

    // ------------------------------------------------------------------------------------------------- Polynomial fit

    [Fact]
    public void PolyFitRecoversAnExactPolynomial()
    {
        double[] truth = [3, -2, 0, 0.5, -7];
        double[] x = Enumerable.Range(0, 11).Select(i => i / 10.0).ToArray();
        double[] y = x.Select(v => PolyFit.Evaluate(truth, v)).ToArray();
        double[] fit = PolyFit.Fit(x, y, 4);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(truth[i], fit[i], 9);
        }

        // A small-x range like TeaCache's (rel ≈ 0.005 … 0.05): still exact to round-off.
        double[] xs = Enumerable.Range(0, 49).Select(i => 0.005 + (i * 0.001)).ToArray();
        double[] small = [-5000, 2000, -120, 2.7, -0.008];
        double[] fitSmall = PolyFit.Fit(xs, xs.Select(v => PolyFit.Evaluate(small, v)).ToArray(), 4);
        for (int i = 0; i < 5; i++)
        {
            Assert.True(Math.Abs(fitSmall[i] - small[i]) <= 1e-6 * Math.Abs(small[i]), $"coefficient {i}: {fitSmall[i]} vs {small[i]}");
        }
    }

    [Fact]
    public void PolyFitNeedsEnoughDistinctPoints()
    {
        Assert.Throws<ArgumentException>(() => PolyFit.Fit([1, 2, 3], [1, 2, 3], 4));
        Assert.Throws<ArgumentException>(() => PolyFit.Fit([1, 1, 1, 1, 1], [1, 2, 3, 4, 5], 4));
    }

    // --------------------------------------------------------------------------------------------- Calibration file

    private static CalibrationFile Calibration(double[]? coefficients = null, double[][]? attn = null, double[][]? mlp = null) =>
        new("test.calibration.json", "model.safetensors",
            new TeaCacheCalibration(s_run10, new double[9], new double[9], coefficients ?? [0, 0, 0, 1, 0]),
            new SmoothCacheCalibration(s_run10, 1, attn ?? [new double[9]], mlp ?? [new double[9]]),
            new MagCacheCalibration(s_run10, Enumerable.Repeat(1.0, 10).ToArray()));

    private static string TempFile()
    {
        string dir = Path.Combine(Path.GetTempPath(), "ditcache-calibration-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, "model.calibration.json");
    }

    [Fact]
    public void SectionsRoundTripAndMergeKeepsTheOthers()
    {
        string path = TempFile();
        CalibrationFile c = Calibration(coefficients: [1.5, -2.25, 3e-7, 0.125, -1]);
        var tuned = new TunedSetting(2, "l", 0.023, "teacache:l=0.023", 1.98, 35.5);
        CalibrationFile.WriteSection(path, c.Section<TeaCacheCalibration>()! with { Tuned = tuned }, "model.safetensors");
        CalibrationFile.WriteSection(path, c.Section<MagCacheCalibration>()!, "model.safetensors");
        CalibrationFile back = CalibrationFile.Load(path, "model.safetensors");
        Assert.Equal([1.5, -2.25, 3e-7, 0.125, -1], back.Section<TeaCacheCalibration>()!.Coefficients);
        Assert.Equal(tuned, back.Section<TeaCacheCalibration>()!.Tuned);
        Assert.Equal(s_run10, back.Section<TeaCacheCalibration>()!.Run);
        Assert.Equal(c.Section<MagCacheCalibration>()!.Gamma, back.Section<MagCacheCalibration>()!.Gamma);
        Assert.Null(back.Section<SmoothCacheCalibration>());

        CalibrationFile.WriteSection(path, c.Section<TeaCacheCalibration>()!, "model.safetensors");             // rewrite one section
        back = CalibrationFile.Load(path, "model.safetensors");
        Assert.Null(back.Section<TeaCacheCalibration>()!.Tuned);
        Assert.NotNull(back.Section<MagCacheCalibration>());
        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!));                               // no temp file left
    }

    [Fact]
    public async System.Threading.Tasks.Task WriteSectionWaitsForTheLockAndKeepsEverySection()
    {
        // A second writer holds the lock: the write waits, then merges with what the other wrote meanwhile.
        string path = TempFile();
        CalibrationFile c = Calibration();
        System.Threading.Tasks.Task write;
        using (FileStream held = CalibrationFile.Lock(path))
        {
            write = System.Threading.Tasks.Task.Run(() => CalibrationFile.WriteSection(path, c.Section<TeaCacheCalibration>()!, "model.safetensors"));
            Assert.NotSame(write, await System.Threading.Tasks.Task.WhenAny(write, System.Threading.Tasks.Task.Delay(300)));   // still waiting
            File.WriteAllText(path, "{\"format\": 1}");                                          // the other writer's file
        }

        await write.WaitAsync(System.TimeSpan.FromSeconds(30));
        Assert.NotNull(CalibrationFile.Load(path, "model.safetensors").Section<TeaCacheCalibration>());

        var writers = new[] { (ICalibrationSection)c.Section<MagCacheCalibration>()!, c.Section<SmoothCacheCalibration>()! };
        System.Threading.Tasks.Parallel.For(0, 20, i => CalibrationFile.WriteSection(path, writers[i % 2], "model.safetensors"));
        CalibrationFile back = CalibrationFile.Load(path, "model.safetensors");
        Assert.NotNull(back.Section<TeaCacheCalibration>());
        Assert.NotNull(back.Section<MagCacheCalibration>());
        Assert.NotNull(back.Section<SmoothCacheCalibration>());
    }

    [Fact]
    public void MissingCalibrationNamesTheFileAndTheCommand()
    {
        CalibrationFile missing = CalibrationFile.Missing("/models/x.calibration.json", "/models/x.safetensors");
        var run = new CacheRunInfo(10, new float[10], 1, 4, 1, 2, missing, "ddim", 1.5);
        foreach (ICacheOptions options in new ICacheOptions[] { new TeaCacheOptions(), new SmoothCacheOptions(), new MagCacheOptions() })
        {
            var e = Assert.Throws<DitCacheException>(() => options.Build(run));
            Assert.Contains("/models/x.calibration.json", e.Message);
            Assert.Contains($"ditcache calibrate {options.Name} --model /models/x.safetensors", e.Message);
            Assert.Equal(2, e.ExitCode);
        }

        var none = new CacheRunInfo(10, new float[10], 1, 4, 1, 2);
        Assert.Contains("ditcache calibrate teacache", Assert.Throws<DitCacheException>(() => new TeaCacheOptions().Build(none)).Message);
    }

    [Fact]
    public void SmoothCacheRefusesAnotherStepCountAndEveryMethodAnotherSampler()
    {
        var run = new CacheRunInfo(20, new float[20], 1, 4, 1, 2, Calibration(), "ddim", 1.5);
        var e = Assert.Throws<DitCacheException>(() => new SmoothCacheOptions().Build(run));
        Assert.Contains("10 steps", e.Message);
        Assert.Contains("has 20", e.Message);
        Assert.Contains("--steps 20", e.Message);
        new TeaCacheOptions().Build(run);                                                // step count independent
        new MagCacheOptions().Build(run);                                                // interpolated

        var ddpm = run with { Steps = 10, Timesteps = new float[10], Sampler = "ddpm" };
        Assert.Contains("--sampler ddim", Assert.Throws<DitCacheException>(() => new MagCacheOptions().Build(ddpm)).Message);
        var cfg4 = run with { Steps = 10, Timesteps = new float[10], CfgScale = 4 };
        Assert.Contains("--cfg 1.5", Assert.Throws<DitCacheException>(() => new TeaCacheOptions().Build(cfg4)).Message);
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("[1, 2]", "top level")]
    [InlineData("{\"format\": 1, \"foo\": {}}", "'foo' is not a known section")]
    [InlineData("{\"magcache\": {\"run\": {\"sampler\": \"ddim\", \"steps\": 3, \"cfg\": 4, \"samples\": 1, \"seed\": 0, \"command\": \"\"}, \"gamma\": [1, 2]}}", "'magcache.gamma' must hold steps = 3")]
    [InlineData("{\"magcache\": {\"run\": {\"sampler\": \"ddim\", \"steps\": 3, \"cfg\": 4, \"samples\": 1, \"seed\": 0, \"command\": \"\"}, \"gamma\": [1, 2, \"x\"]}}", "'magcache.gamma")]
    [InlineData("{\"teacache\": {\"coefficients\": [1, 2, 3, 4, 5], \"extra\": 1}}", "'teacache")]
    [InlineData("{\"teacache\": {\"run\": {\"sampler\": \"ddim\", \"steps\": 3, \"cfg\": 4, \"samples\": 1, \"seed\": 0, \"command\": \"\"}, \"rel_in\": [0, 0], \"rel_out\": [0, 0], \"coefficients\": [1, 2]}}", "'teacache.coefficients' must hold 5")]
    [InlineData("{\"smoothcache\": {\"run\": {\"sampler\": \"ddim\", \"steps\": 3, \"cfg\": 4, \"samples\": 1, \"seed\": 0, \"command\": \"\"}, \"lookahead\": 1, \"attn\": [[0, 0, 0]], \"mlp\": [[0, 0]]}}", "'smoothcache.attn[0]' must hold steps − 1 = 2")]
    public void MalformedFilesNameTheKeyAndTheFix(string json, string expected)
    {
        var e = Assert.Throws<DitCacheException>(() => CalibrationFile.Parse(System.Text.Encoding.UTF8.GetBytes(json), "m.calibration.json", "m.safetensors"));
        Assert.Contains(expected, e.Message);
        Assert.Contains("m.calibration.json", e.Message);
        Assert.Contains("ditcache calibrate", e.Message);
    }

    [Theory]
    [InlineData("teacache:l=-1", "l=-1")]
    [InlineData("teacache:thresh=1", "thresh")]
    [InlineData("magcache:thresh=-0.1", "thresh=-0.1")]
    [InlineData("magcache:k=-1", "k=-1")]
    [InlineData("magcache:retention=2", "retention=2")]
    [InlineData("smoothcache:alpha=-1", "alpha=-1")]
    [InlineData("smoothcache:l=3", "l")]
    public void BadKnobsAreUsageErrors(string spec, string knob)
    {
        var e = Assert.Throws<DitCacheException>(() => CacheRegistry.Parse(spec));
        Assert.Equal(2, e.ExitCode);
        Assert.Contains(knob, e.Message);
    }

    [Fact]
    public void SpecsRoundTrip()
    {
        foreach (string spec in new[] { "teacache:l=0.023", "magcache:thresh=0.1,k=3,retention=0.2", "smoothcache:alpha=0.08239" })
        {
            Assert.Equal(spec, CacheRegistry.Parse(spec).Spec);
        }
    }

    [LinuxFact]
    public void A_calibration_path_that_is_a_device_is_an_error_only_when_read()
    {
        // /dev/null stands for any non-regular file beside a model (a FIFO would block a plain read forever).
        var e = Assert.Throws<DitCacheException>(() => CalibrationFile.Load("/dev/null", "m.safetensors"));
        Assert.Equal("/dev/null: the calibration beside the model is not a regular file (a device or pipe); remove it, or write it with 'ditcache calibrate all --model m.safetensors'", e.Message);
        CalibrationFile deferred = CalibrationFile.Deferred("/dev/null", "m.safetensors");   // --cache none never reads it
        Assert.NotNull(deferred);
    }

}
