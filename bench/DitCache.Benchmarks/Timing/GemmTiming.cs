using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.CompilerServices;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>gemm [threads=1,2] [rounds=15] [backends=managed,openblas] [shape filters, comma-separated or ""] [wall|cpu]</c>: the GEMM backends on the DiT
/// Linear shapes (C = A·Bᵀ, B a [n, k] weight), alternated call batch by call batch in one process (<see cref="Timer"/>),
/// so that load from other processes on a shared machine hits them alike. Prints the median ms per call, GFLOP/s and
/// each backend's ratio to the last one (by default managed / OpenBLAS, the acceptance number). The weight is
/// prepared (<see cref="IGemm.Prepare"/>) as the model does; a backend written "name:raw" skips that; the backend
/// "kernel" is the micro-kernel alone (<see cref="KernelAlone"/>). A fifth argument "cpu" times each batch by the
/// calling thread's CPU time instead of the wall clock (<see cref="Timer"/>; one thread only).
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
        string[] filters = args.Length > 4 && args[4].Length > 0 ? args[4].Split(',') : [""];
        bool threadCpu = args.Length > 5 && args[5] == "cpu";

        Console.WriteLine($"gemm: C = A·Bᵀ, median of {rounds} alternating rounds; ISA {ManagedGemm.Resolve(GemmIsa.Auto)}; "
            + $"ratio = backend / {backends[^1]} in GFLOP/s" + (threadCpu ? "; timed by the calling thread's CPU time" : ""));
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
                    string spec = raw ? backends[i][..^4] : backends[i];
                    float[] ci = c[i] = new float[m * n];
                    if (spec is "kernel")
                    {
                        calls.Add(KernelAlone(m, n, k));
                        continue;
                    }

                    IGemm gemm = GemmFactory.Create(spec, threads);
                    if (!raw)
                    {
                        gemm.Prepare(w, n, k);
                    }

                    calls.Add(() => gemm.Multiply(m, n, k, a, k, w, k, transB: true, ci, n));
                }

                double flops = 2.0 * m * n * k;
                int perRound = Math.Max(1, (int)(2e9 / flops));         // about 20-40 ms per batch at 50-100 GFLOP/s
                double[] ms = Timer.Compare(rounds, perRound, threadCpu, [.. calls]);
                Console.Write($"| {name} ({m}, {n}, {k}) | {threads} |");
                foreach (double t in ms)
                {
                    Console.Write($" {t:F3} | {flops / t / 1e6:F1} |");
                }

                for (int i = 0; i < backends.Length - 1; i++)
                {
                    Console.Write($" {ms[^1] / ms[i] * 100:F0}% |");
                }

                // Largest difference between the first GEMM's C and the last backend's (kernels alone write no C).
                double maxDiff = 0;
                int first = Array.FindIndex(backends, b => !b.StartsWith("kernel", StringComparison.Ordinal));
                for (int i = 0; first >= 0 && i < c[first].Length; i++)
                {
                    maxDiff = Math.Max(maxDiff, Math.Abs(c[first][i] - c[^1][i]));
                }

                Console.WriteLine(first >= 0 ? $"   max|diff| {maxDiff:E1}" : "");
            }
        }
    }

    // "kernel": the micro-kernel ManagedGemm picks on this machine (its float32 Run, as the GEMM calls it), alone, on
    // operands that stay in L1 (kc = 256: Mr rows of A and one packed B panel, 22-40 KB), as many times as the
    // product has tiles × k blocks of 256: the same multiply-adds as the GEMM, without its packing, blocking, cache
    // misses and edges. Its speed is the ceiling a GEMM built on it can reach.
    private static unsafe Action KernelAlone(int m, int n, int k)
    {
        const int Kc = 256;
        return ManagedGemm.Resolve(GemmIsa.Auto) switch
        {
            GemmIsa.Avx512 => Tiles<Avx512Kernel8x32>(),
            GemmIsa.Avx2 => Tiles<Avx2Kernel6x16>(),
            _ => Tiles<ScalarKernel4x8>(),
        };

        Action Tiles<TKernel>()
            where TKernel : IGemmMicroKernel
        {
            long calls = (long)m * n * k / ((long)TKernel.Mr * TKernel.Nr * Kc);
            float[] a = GC.AllocateArray<float>(TKernel.Mr * Kc, pinned: true);
            float[] b = GC.AllocateArray<float>((TKernel.Nr * Kc) + 16, pinned: true);
            float[] c = GC.AllocateArray<float>(TKernel.Mr * TKernel.Nr, pinned: true);
            Random(a.Length, 3).CopyTo(a, 0);
            Random(b.Length, 4).CopyTo(b, 0);
            float* pa = (float*)Unsafe.AsPointer(ref a[0]);
            float* pb = (float*)(((nint)Unsafe.AsPointer(ref b[0]) + 63) & ~(nint)63);   // panels are 64-byte aligned
            float* pc = (float*)Unsafe.AsPointer(ref c[0]);
            return () =>
            {
                for (long q = 0; q < calls; q++)
                {
                    TKernel.Run(Kc, pa, Kc, pb, pc, TKernel.Nr, add: false);
                }

                GC.KeepAlive(a);
                GC.KeepAlive(b);
                GC.KeepAlive(c);
            };
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
