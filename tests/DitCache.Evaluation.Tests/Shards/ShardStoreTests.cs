using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using DitCache.Evaluation.Shards;
using DitCache.Tensors;
using Xunit;

namespace DitCache.Evaluation.Tests.Shards;

/// <summary>
/// The shard folder: --shard parsing, the round-robin batch split, resume from the manifest (a torn last line, a
/// damaged file), the lock against a second process, and the merge's refusals.
/// </summary>
public sealed class ShardStoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "ditcache-shard-tests", Guid.NewGuid().ToString("N"));

    public ShardStoreTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Dictionary<string, string> Settings(string cfg = "4") => new()
    {
        ["images"] = "6", ["batch"] = "2", ["cfg"] = cfg, ["model"] = "(sha256 0123)",
    };

    private static byte[] Item(int i) => Encoding.UTF8.GetBytes($"image {i}");

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("3/4", 3, 4)]
    [InlineData("12/100", 12, 100)]
    public void Shard_specs_parse(string text, int k, int n) => Assert.Equal(new ShardSpec(k, n), ShardSpec.Parse(text));

    [Theory]
    [InlineData("4/4")]
    [InlineData("1/0")]
    [InlineData("-1/4")]
    [InlineData("1")]
    [InlineData("a/b")]
    [InlineData("1/2/3")]
    [InlineData(" 1/2")]
    public void Bad_shard_specs_name_the_flag_and_the_form(string text)
    {
        DitCacheException e = Assert.Throws<DitCacheException>(() => ShardSpec.Parse(text));
        Assert.Equal(2, e.ExitCode);
        Assert.StartsWith($"--shard '{text}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("0 <= k < n", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_batch_belongs_to_exactly_one_shard_for_any_count()
    {
        foreach (int n in new[] { 1, 2, 3, 7 })
        {
            for (int b = 0; b < 50; b++)
            {
                Assert.Single(Enumerable.Range(0, n), k => new ShardSpec(k, n).Owns(b));
                Assert.True(new ShardSpec(ShardSpec.OwnerOf(b, n), n).Owns(b));
            }
        }
    }

    [Fact]
    public void A_restarted_shard_keeps_finished_images_and_drops_a_torn_line_and_a_damaged_file()
    {
        var spec = new ShardSpec(1, 2);
        string folder;
        using (ShardStore store = ShardStore.Open(_dir, spec, "sample", Settings()))
        {
            folder = store.Directory;
            foreach (int i in new[] { 2, 3, 4 })
            {
                store.Write(i, Item(i));
            }
        }

        Assert.Equal(Path.Combine(_dir, "shard-1-of-2"), folder);
        File.WriteAllBytes(Path.Combine(folder, ShardStore.ItemName(3)), Encoding.UTF8.GetBytes("damaged"));
        File.AppendAllText(Path.Combine(folder, ShardStore.ManifestFile), "{\"index\":5,\"fi");     // killed mid-line

        using (ShardStore store = ShardStore.Open(_dir, spec, "sample", Settings()))
        {
            Assert.True(store.IsDone(2));
            Assert.False(store.IsDone(3));                                  // its file no longer matches its line
            Assert.True(store.IsDone(4));
            Assert.False(store.IsDone(5));
            Assert.Equal(2, store.DoneCount);
            store.Write(3, Item(3));
            store.Write(4, Item(4));                                        // the same bytes again: no new line
            DitCacheException changed = Assert.Throws<DitCacheException>(() => store.Write(2, Item(99)));
            Assert.Contains("not deterministic", changed.Message, StringComparison.Ordinal);
        }

        string manifest = File.ReadAllText(Path.Combine(folder, ShardStore.ManifestFile));
        Assert.EndsWith("\n", manifest, StringComparison.Ordinal);
        Assert.DoesNotContain("\"fi\n", manifest, StringComparison.Ordinal);
        Assert.Equal([2, 3, 4, 3], ShardStore.ReadManifest(folder).Select(e => e.Index));
        Assert.Equal("image 3", File.ReadAllText(Path.Combine(folder, ShardStore.ItemName(3))));
        Assert.False(File.Exists(Path.Combine(folder, ShardStore.OwnerFile)));
    }

    [Fact]
    public void A_second_opener_of_the_same_shard_is_refused_with_the_lock_file_and_its_owner()
    {
        var spec = new ShardSpec(0, 3);
        using ShardStore first = ShardStore.Open(_dir, spec, "sample", Settings());
        DitCacheException e = Assert.Throws<DitCacheException>(() => ShardStore.Open(_dir, spec, "sample", Settings()));
        Assert.Contains(Path.Combine(first.Directory, ShardStore.LockFile), e.Message, StringComparison.Ordinal);
        Assert.Contains($"pid {Environment.ProcessId}", e.Message, StringComparison.Ordinal);
        Assert.Contains("give each process its own --shard index", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);

        using ShardStore other = ShardStore.Open(_dir, new ShardSpec(1, 3), "sample", Settings());   // another index is fine
    }

    [Fact]
    public void A_folder_of_other_settings_is_refused_naming_the_setting()
    {
        using (ShardStore.Open(_dir, new ShardSpec(0, 2), "sample", Settings()))
        {
        }

        DitCacheException e = Assert.Throws<DitCacheException>(() => ShardStore.Open(_dir, new ShardSpec(0, 2), "sample", Settings(cfg: "1.5")));
        Assert.Contains("cfg: 4 vs 1.5", e.Message, StringComparison.Ordinal);
        Assert.Contains(ShardStore.SettingsFile, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Merge_copies_every_image_once_and_refuses_gaps_overlaps_and_other_runs()
    {
        // 6 images in batches of 2: shard 0/2 runs batches 0 and 2 (images 0, 1, 4, 5), shard 1/2 batch 1 (2, 3).
        WriteShard(new ShardSpec(0, 2), [0, 1, 4]);
        string merged = Path.Combine(_dir, "merged");
        DitCacheException gap = Assert.Throws<DitCacheException>(() => ShardMerge.Run([_dir], merged));
        Assert.Contains("3 of 6 images are missing (first: 2, 3, 5)", gap.Message, StringComparison.Ordinal);
        Assert.Contains("--shard 1/2, 0/2", gap.Message, StringComparison.Ordinal);

        WriteShard(new ShardSpec(0, 2), [5]);
        WriteShard(new ShardSpec(1, 2), [2, 3]);
        ShardMergeResult result = ShardMerge.Run([_dir], merged);
        Assert.Equal(6, result.Images);
        Assert.Equal(2, result.Shards);
        Assert.Null(result.FrechetDistance);                                // sample runs carry no scores
        for (int i = 0; i < 6; i++)
        {
            Assert.Equal(Item(i), File.ReadAllBytes(Path.Combine(merged, ShardStore.ItemName(i))));
        }

        Assert.Equal(Enumerable.Range(0, 6), ShardStore.ReadManifest(merged).Select(e => e.Index));
        Assert.Equal(6, ShardMerge.Run([_dir], merged).Images);                 // merging again into the same folder is fine

        // The same image from two folders (shards of another count): refused, naming both.
        string other = Path.Combine(_dir, "other");
        Directory.CreateDirectory(other);
        using (ShardStore store = ShardStore.Open(other, new ShardSpec(1, 3), "sample", Settings()))
        {
            store.Write(2, Item(2));
        }

        DitCacheException twice = Assert.Throws<DitCacheException>(() => ShardMerge.Run([_dir, other], Path.Combine(_dir, "m2")));
        Assert.Contains("image 2 is in both", twice.Message, StringComparison.Ordinal);

        // Another run's settings: refused, naming the setting.
        string third = Path.Combine(_dir, "third");
        Directory.CreateDirectory(third);
        using (ShardStore.Open(third, new ShardSpec(1, 2), "sample", Settings(cfg: "2")))
        {
        }

        DitCacheException settings = Assert.Throws<DitCacheException>(() =>
            ShardMerge.Run([Path.Combine(_dir, "shard-0-of-2"), Path.Combine(third, "shard-1-of-2")], Path.Combine(_dir, "m3")));
        Assert.Contains("is of another run", settings.Message, StringComparison.Ordinal);
        Assert.Contains("cfg: 2 vs 4", settings.Message, StringComparison.Ordinal);

        // A merged folder of another run is not merged into.
        using (ShardStore.Open(third, new ShardSpec(0, 2), "sample", Settings(cfg: "2")))
        {
        }

        DitCacheException mixed = Assert.Throws<DitCacheException>(() => ShardMerge.Run([third], merged));
        Assert.Contains("holds the merge of another run (cfg: 4 vs 2)", mixed.Message, StringComparison.Ordinal);

        // A damaged image is named.
        File.WriteAllText(Path.Combine(_dir, "shard-1-of-2", ShardStore.ItemName(3)), "bit rot");
        DitCacheException damaged = Assert.Throws<DitCacheException>(() => ShardMerge.Run([_dir], Path.Combine(_dir, "m4")));
        Assert.Contains(ShardStore.ItemName(3), damaged.Message, StringComparison.Ordinal);
        Assert.Contains("does not match its manifest line", damaged.Message, StringComparison.Ordinal);
    }

    private void WriteShard(ShardSpec spec, int[] indices)
    {
        using ShardStore store = ShardStore.Open(_dir, spec, "sample", Settings());
        foreach (int i in indices)
        {
            store.Write(i, Item(i));
        }
    }
}
