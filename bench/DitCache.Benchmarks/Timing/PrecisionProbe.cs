using System;
using System.Linq;
using DitCache.Caching;
using DitCache.Evaluation.Assets;
using DitCache.Evaluation.Metrics;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>precision [images=20] [threads=2] [backends=managed-bf16,openblas]</c>: the accuracy cost of a GEMM backend on
/// the shipped model. Samples <c>images</c> images (classes 0, 1, …, 9, 0, …) with 50 DDIM steps, CFG 4, seed 0 (the
/// same noise for every backend) and scores each backend's final samples against float32 <c>managed</c>'s: PSNR per
/// image on [0, 1] pixels (<see cref="ImageMetrics.Psnr"/>, capped at 100 dB), the mean, median and worst, and the
/// largest absolute difference of the raw samples. OpenBLAS (float32, another summation order) shows the floor that
/// float32 rounding alone gives.
/// </summary>
internal static class PrecisionProbe
{
    public static void Run(string[] args)
    {
        int images = args.Length > 1 ? int.Parse(args[1]) : 20;
        int threads = args.Length > 2 ? int.Parse(args[2]) : 2;
        string[] backends = (args.Length > 3 ? args[3] : "managed-bf16,openblas").Split(',');
        DitWeights weights = DefaultModel.LoadWeights(null, exclusive: false);   // one model per backend
        int[] classes = Enumerable.Range(0, images).Select(i => i % weights.Config.NumClasses).ToArray();
        var request = new SampleRequest(classes, Steps: 50, Sampler: "ddim", CfgScale: 4f, Seed: 0);

        (Tensor reference, double referenceSeconds) = Sample(weights, "managed", threads, request);
        int per = reference.Data.Length / images;
        Console.WriteLine($"precision: shipped model, {images} images, 50 DDIM steps, CFG 4, seed 0, {threads} threads; against managed (float32, {referenceSeconds:F1} s)");
        Console.WriteLine("| backend | mean PSNR (dB) | median PSNR (dB) | min PSNR (dB) | images under 40 dB | max abs diff | seconds |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (string backend in backends)
        {
            (Tensor sample, double seconds) = Sample(weights, backend, threads, request);
            double[] psnr = new double[images];
            for (int i = 0; i < images; i++)
            {
                psnr[i] = ImageMetrics.Psnr(sample.Data.AsSpan(i * per, per), reference.Data.AsSpan(i * per, per));
            }

            double maxDiff = 0;
            for (int i = 0; i < sample.Data.Length; i++)
            {
                maxDiff = Math.Max(maxDiff, Math.Abs(sample.Data[i] - reference.Data[i]));
            }

            double median = psnr.Order().ElementAt(images / 2);
            Console.WriteLine($"| {backend} | {psnr.Average():F2} | {median:F2} | {psnr.Min():F2} | {psnr.Count(p => p < 40)} | {maxDiff:E2} | {seconds:F1} |");
        }
    }

    private static (Tensor Sample, double Seconds) Sample(DitWeights weights, string backend, int threads, SampleRequest request)
    {
        var pipeline = new DiffusionPipeline(new DitModel(weights, GemmFactory.Create(backend, threads), threads));
        SampleResult result = pipeline.Run(request, CacheRegistry.Parse("none"));
        return (result.Sample, result.Seconds);
    }
}
