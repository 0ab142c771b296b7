using System;
using System.Text.Json;
using DitCache.Caching;
using DitCache.Evaluation.Reports;
using DitCache.Evaluation.Tests.Quality;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Evaluation.Tests.Reports;

/// <summary>The sample report's peak memory field, on a one-step run of a tiny random DiT.</summary>
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
}
