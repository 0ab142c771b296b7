using System;
using System.Linq;
using System.Text.Json;
using DitCache.Caching;
using DitCache.Evaluation.Reports;
using DitCache.Evaluation.Tests.Quality;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Evaluation.Tests.Reports;

/// <summary>The sample report's peak memory field and per-sample outcomes, on short runs of a tiny random DiT.</summary>
public sealed class RunReportTests
{
    [Fact]
    public void Peak_rss_is_reported_on_linux_at_least_the_resident_set_before_the_report_and_null_elsewhere()
    {
        var model = new DitModel(DitWeights.FromFile(QualityEvaluationTests.RandomDit()), GemmFactory.Create("auto", 1), 1);
        var request = new SampleRequest([0], Steps: 1, CfgScale: 1f);
        SampleResult result = new DiffusionPipeline(model).Run(request, CacheRegistry.Parse("none"));
        long residentBefore = Environment.WorkingSet;       // the current RSS: the high-water mark can only be above it

        using JsonDocument json = JsonDocument.Parse(RunReport.ToJson(result, request, model.Config, "random", "auto", 1));
        JsonElement peak = json.RootElement.GetProperty("peak_rss_bytes");

        if (!OperatingSystem.IsLinux())
        {
            Assert.Equal(JsonValueKind.Null, peak.ValueKind);
            return;
        }

        long bytes = peak.GetInt64();
        Assert.True(bytes >= residentBefore, $"peak {bytes} below the resident set {residentBefore} read before the report");
        Assert.True(bytes < 1L << 40, $"peak {bytes} is not a plausible byte count (kB not scaled?)");
        Assert.Equal(0, bytes % 1024);                     // VmHWM is whole kB
    }

    [Fact]
    public void A_per_sample_policy_reports_each_rows_outcome_per_step_and_a_whole_batch_policy_none()
    {
        var model = new DitModel(DitWeights.FromFile(QualityEvaluationTests.RandomDit()), GemmFactory.Create("auto", 1), 1);
        var request = new SampleRequest([0, 1], Steps: 12, CfgScale: 1.5f);
        ICacheOptions options = CacheRegistry.Parse("speca:tau=0.000001,floor=0");
        ICachePolicy? policy = null;
        var seen = new string[request.Steps];
        SampleResult result = new DiffusionPipeline(model).Run(request, run => policy = options.Build(run), options.Spec,
            observe: (n, _) => seen[n] = string.Concat(Enumerable.Range(0, 4).Select(b => policy!.OutcomeOf(b) switch
            {
                SampleOutcome.Computed => "C",
                SampleOutcome.Drafted => "D",
                SampleOutcome.Accepted => "A",
                SampleOutcome.Rejected => "R",
                _ => "?",
            })));

        using JsonDocument json = JsonDocument.Parse(RunReport.ToJson(result, request, model.Config, "random", "auto", 1));
        Assert.Contains("uncond row", json.RootElement.GetProperty("sample_order").GetString(), StringComparison.Ordinal);
        string[] reported = json.RootElement.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("samples").GetString()!).ToArray();
        Assert.Equal(seen, reported);
        Assert.Equal(["CCCC", "CCCC", "CCCC", "DDDD", "DDDD"], reported.Take(5));      // warm-up 3, then min = 2 unchecked drafts
        Assert.Contains("RRRR", reported);                                              // a threshold near 0 rejects the checked drafts

        SampleResult plain = new DiffusionPipeline(model).Run(request, CacheRegistry.Parse("taylorseer"));
        using JsonDocument other = JsonDocument.Parse(RunReport.ToJson(plain, request, model.Config, "random", "auto", 1));
        Assert.False(other.RootElement.TryGetProperty("sample_order", out _));
        Assert.All(other.RootElement.GetProperty("steps").EnumerateArray(), s => Assert.False(s.TryGetProperty("samples", out _)));
    }
}
