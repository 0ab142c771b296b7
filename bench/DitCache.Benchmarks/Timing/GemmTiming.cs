using System;
using System.Collections.Generic;
using System.Globalization;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>gemm [threads=1,2] [rounds=15] [backends=managed,openblas] [shape filters, comma-separated]</c>: the GEMM backends on the DiT
/// Linear shapes (C = A·Bᵀ, B a [n, k] weight), alternated call batch by call batch in one process (<see cref="Timer"/>),
/// so that load from other processes on a shared machine hits them alike. Prints the median ms per call, GFLOP/s and
/// each backend's ratio to the last one (by default managed / OpenBLAS, the acceptance number). The weight is
/// prepared (<see cref="IGemm.Prepare"/>) as the model does; a backend written "name:raw" skips that.
/// </summary>
internal static class GemmTiming
{
    // (name, m, n, k): DiT-XL/2 at 256×256 (512 tokens), and the shipped model at batch 100 with CFG (200 rows × 49 tokens).
    private static readonly (string Name, int M, int N, int K)[] s_shapes =
    [
        ("XL attn.proj", 512, 1152, 1152),
        ("XL qkv", 512, 3456, 1152),
        ("XL fc1", 512, 4608, 1152),
        ("XL fc2", 512, 1152, 4608),
        ("shipped qkv", 9800, 384, 128),
        ("shipped proj", 9800, 128, 128),
        ("shipped fc1", 9800, 512, 128),
        ("shipped fc2", 9800, 128, 512),
    ];

    public static void Run(string[] args)
    {
        int[] threadCounts = Array.ConvertAll((args.Length > 1 ? args[1] : "1,2").Split(','), int.Parse);
        int rounds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 15;
        string[] backends = (args.Length > 3 ? args[3] : "managed,openblas").Split(',');
        string[] filters = args.Length > 4 ? args[4].Split(',') : [""];

        Console.WriteLine($"gemm: C = A·Bᵀ, median of {rounds} alternating rounds; ISA {ManagedGemm.Resolve(GemmIsa.Auto)}; "
            + $"ratio = backend / {backends[^1]} in GFLOP/s");
        Console.Write("| shape (m, n, k) | threads |");
        foreach (string b in backends)
        {
            Console.Write($" {b} ms | {b} GFLOP/s |");
        }

        for (int i = 0; i < backends.Length - 1; i++)
        {
            Console.Write($" {backends[i]} / {backends[^1]} |");
        }

        Console.WriteLine();
        Console.WriteLine("|---|---:|" + string.Concat(System.Linq.Enumerable.Repeat("---:|---:|", backends.Length))
            + string.Concat(System.Linq.Enumerable.Repeat("---:|", backends.Length - 1)));

        foreach (int threads in threadCounts)
        {
            foreach ((string name, int m, int n, int k) in s_shapes)
            {
                if (!Array.Exists(filters, f => name.Contains(f, StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }

                float[] a = Random(m * k, 1);
                float[] w = Random(n * k, 2);
                var c = new float[backends.Length][];
                var calls = new List<Action>();
                for (int i = 0; i < backends.Length; i++)
                {
                    // "name:raw" leaves the weight unprepared, so the backend packs B on every call.
                    bool raw = backends[i].EndsWith(":raw", StringComparison.Ordinal);
                    IGemm gemm = GemmFactory.Create(raw ? backends[i][..^4] : backends[i], threads);
                    if (!raw)
                    {
                        gemm.Prepare(w, n, k);
                    }

                    float[] ci = c[i] = new float[m * n];
                    calls.Add(() => gemm.Multiply(m, n, k, a, k, w, k, transB: true, ci, n));
                }

                double flops = 2.0 * m * n * k;
                int perRound = Math.Max(1, (int)(2e9 / flops));         // about 20-40 ms per batch at 50-100 GFLOP/s
                double[] ms = Timer.Compare(rounds, perRound, [.. calls]);
                Console.Write($"| {name} ({m}, {n}, {k}) | {threads} |");
                foreach (double t in ms)
                {
                    Console.Write($" {t:F3} | {flops / t / 1e6:F1} |");
                }

                for (int i = 0; i < backends.Length - 1; i++)
                {
                    Console.Write($" {ms[^1] / ms[i] * 100:F0}% |");
                }

                double maxDiff = 0;
                for (int i = 0; i < c[0].Length; i++)
                {
                    maxDiff = Math.Max(maxDiff, Math.Abs(c[0][i] - c[^1][i]));
                }

                Console.WriteLine($"   max|diff| {maxDiff:E1}");
            }
        }
    }

    private static float[] Random(int length, int seed)
    {
        var rng = new Random(seed);
        float[] x = new float[length];
        for (int i = 0; i < length; i++)
        {
            x[i] = (float)(rng.NextDouble() - 0.5);
        }

        return x;
    }
}
