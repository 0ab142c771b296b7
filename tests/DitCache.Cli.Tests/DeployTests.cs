using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using DitCache.Evaluation.Shards;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace DitCache.Cli.Tests;

/// <summary>
/// deploy/: the Kubernetes manifests parse and map the completion index onto --shard (every batch to exactly one
/// pod), their arguments are valid ditcache flags; the Slurm array script's index arithmetic and the submit script's
/// dependency, run with fake sbatch and ditcache programs that record their arguments; deploy/local.sh end to end.
/// </summary>
public sealed class DeployTests
{
    private static string Deploy(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "deploy", .. parts]);

    private static YamlMappingNode Load(string file)
    {
        var yaml = new YamlStream();
        using var reader = new StreamReader(Deploy("k8s", file));
        yaml.Load(reader);
        return (YamlMappingNode)Assert.Single(yaml.Documents).RootNode;
    }

    private static YamlNode At(YamlNode node, params object[] path)
    {
        foreach (object step in path)
        {
            node = step is int i ? ((YamlSequenceNode)node).Children[i] : ((YamlMappingNode)node).Children[new YamlScalarNode((string)step)];
        }

        return node;
    }

    private static string Scalar(YamlNode node, params object[] path) => ((YamlScalarNode)At(node, path)).Value!;

    private static string[] Args(YamlNode container) => [.. ((YamlSequenceNode)At(container, "args")).Children.Select(c => ((YamlScalarNode)c).Value!)];

    private static Dictionary<string, YamlNode> Env(YamlNode container) =>
        ((YamlSequenceNode)At(container, "env")).Children.ToDictionary(e => Scalar(e, "name"), e => e);

    [Fact]
    public void Kubernetes_indexed_job_maps_each_completion_index_to_one_shard_and_the_merge_reads_what_they_write()
    {
        YamlMappingNode job = Load("shards-job.yaml"), merge = Load("merge-job.yaml"), pvc = Load("pvc.yaml");
        Assert.Equal("Job", Scalar(job, "kind"));
        Assert.Equal("Indexed", Scalar(job, "spec", "completionMode"));
        int completions = int.Parse(Scalar(job, "spec", "completions"), System.Globalization.CultureInfo.InvariantCulture);
        YamlNode pod = At(job, "spec", "template", "spec");
        Assert.Equal("Never", Scalar(pod, "restartPolicy"));
        YamlNode container = At(pod, "containers", 0);
        Dictionary<string, YamlNode> env = Env(container);
        Assert.Equal(completions.ToString(System.Globalization.CultureInfo.InvariantCulture), Scalar(env["SHARDS"], "value"));
        Assert.Equal("metadata.annotations['batch.kubernetes.io/job-completion-index']",
            Scalar(env["JOB_COMPLETION_INDEX"], "valueFrom", "fieldRef", "fieldPath"));

        // Kubernetes expands $(VAR) from the container's env: do that for every index, as the kubelet would.
        string[] args = Args(container);
        int at = Array.IndexOf(args, "--shard");
        Assert.True(at >= 0, "the shard Job passes no --shard");
        var specs = new List<ShardSpec>();
        for (int index = 0; index < completions; index++)
        {
            string[] expanded = [.. args.Select(a => Regex.Replace(a, @"\$\((\w+)\)", m => m.Groups[1].Value switch
            {
                "JOB_COMPLETION_INDEX" => index.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "SHARDS" => Scalar(env["SHARDS"], "value"),
                string other => throw new InvalidOperationException($"$({other}) is not defined in the container's env"),
            }))];
            specs.Add(ShardSpec.Parse(expanded[at + 1]));
            System.CommandLine.ParseResult parsed = CliApp.Build(TextWriter.Null, TextWriter.Null, false).Parse(expanded);
            Assert.True(parsed.Errors.Count == 0, string.Join("; ", parsed.Errors.Select(e => e.Message)));
        }

        Assert.Equal(Enumerable.Range(0, completions), specs.Select(s => s.Index));
        Assert.All(specs, s => Assert.Equal(completions, s.Count));
        for (int batch = 0; batch < 1000; batch++)
        {
            Assert.Single(specs, s => s.Owns(batch));
        }

        // The merge reads the shards' --out-dir and writes beside them, on the same claim mounted at the same path.
        string outDir = args[Array.IndexOf(args, "--out-dir") + 1];
        YamlNode mergeContainer = At(merge, "spec", "template", "spec", "containers", 0);
        string[] mergeArgs = Args(mergeContainer);
        Assert.Equal("merge", mergeArgs[0]);
        Assert.Equal(outDir, mergeArgs[1]);
        Assert.StartsWith(outDir + "/", mergeArgs[Array.IndexOf(mergeArgs, "--out") + 1], StringComparison.Ordinal);
        Assert.Empty(CliApp.Build(TextWriter.Null, TextWriter.Null, false).Parse(mergeArgs).Errors);
        string claim = Scalar(pvc, "metadata", "name");
        Assert.Contains("ReadWriteMany", ((YamlSequenceNode)At(pvc, "spec", "accessModes")).Children.Select(c => ((YamlScalarNode)c).Value));
        foreach (YamlNode spec in new[] { pod, At(merge, "spec", "template", "spec") })
        {
            Assert.Equal(claim, Scalar(spec, "volumes", 0, "persistentVolumeClaim", "claimName"));
            string volume = Scalar(spec, "volumes", 0, "name");
            YamlNode mount = At(spec, "containers", 0, "volumeMounts", 0);
            Assert.Equal(volume, Scalar(mount, "name"));
            Assert.StartsWith(Scalar(mount, "mountPath") + "/", outDir + "/", StringComparison.Ordinal);
        }
    }

    private static (int Code, string Out, string Err) Bash(string script, IEnumerable<string> args, IDictionary<string, string> env)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        foreach (string name in new[] { "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "OUT", "DITCACHE", "SBATCH_OPTS" })
        {
            info.Environment.Remove(name);
        }

        foreach ((string key, string value) in env)
        {
            info.Environment[key] = value;
        }

        using Process p = Process.Start(info)!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(300_000), $"{script} ran over 5 minutes");
        return (p.ExitCode, stdout, err.Result);
    }

    /// <summary>A program that appends its arguments, one per line, to <paramref name="record"/>, then a blank line.</summary>
    private static string Recorder(string dir, string name, string record, string print = "")
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, $"#!/usr/bin/env bash\nprintf '%s\\n' \"$@\" >> '{record}'\necho >> '{record}'\n{print}\n");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        return path;
    }

    [Theory]
    [InlineData(0, 4, 0, "0/4")]
    [InlineData(3, 4, 0, "3/4")]
    [InlineData(1, 4, 1, "0/4")]                  // --array=1-4: task 1 is the first shard
    [InlineData(4, 4, 1, "3/4")]
    [InlineData(31, 32, 0, "31/32")]
    public void Slurm_array_task_maps_to_its_shard(int task, int count, int min, string shard)
    {
        string dir = CliRunner.TempDir(), record = Path.Combine(dir, "args");
        string fake = Recorder(dir, "ditcache", record);
        (int code, _, string err) = Bash(Deploy("slurm", "ditcache-shard.sbatch"), ["evaluate", "--cache", "foca:n=3", "--threads", "16"], new Dictionary<string, string>
        {
            ["SLURM_ARRAY_TASK_ID"] = $"{task}", ["SLURM_ARRAY_TASK_COUNT"] = $"{count}", ["SLURM_ARRAY_TASK_MIN"] = $"{min}",
            ["OUT"] = "/shared/run", ["DITCACHE"] = fake,
        });
        Assert.True(code == 0, err);
        Assert.Equal(["evaluate", "--cache", "foca:n=3", "--threads", "16", "--shard", shard, "--out-dir", "/shared/run", ""],
            File.ReadAllLines(record));
    }

    [Fact]
    public void Slurm_array_with_a_step_or_without_out_is_refused_with_one_line()
    {
        string dir = CliRunner.TempDir(), record = Path.Combine(dir, "args");
        string fake = Recorder(dir, "ditcache", record);
        (int code, _, string err) = Bash(Deploy("slurm", "ditcache-shard.sbatch"), ["sample"], new Dictionary<string, string>
        {
            ["SLURM_ARRAY_TASK_ID"] = "6", ["SLURM_ARRAY_TASK_COUNT"] = "4", ["SLURM_ARRAY_TASK_MIN"] = "0", ["OUT"] = "/o", ["DITCACHE"] = fake,
        });
        Assert.Equal(2, code);
        Assert.Contains("shard 6/4, outside 0..3", err, StringComparison.Ordinal);
        Assert.Single(err.TrimEnd().Split('\n'));

        (code, _, err) = Bash(Deploy("slurm", "ditcache-shard.sbatch"), ["sample"], new Dictionary<string, string>
        {
            ["SLURM_ARRAY_TASK_ID"] = "0", ["SLURM_ARRAY_TASK_COUNT"] = "4", ["DITCACHE"] = fake,
        });
        Assert.NotEqual(0, code);
        Assert.Contains("set OUT", err, StringComparison.Ordinal);
        Assert.False(File.Exists(record), "ditcache ran though the task was refused");
    }

    [Fact]
    public void Slurm_submit_runs_the_merge_after_every_shard_succeeded()
    {
        string dir = CliRunner.TempDir(), record = Path.Combine(dir, "sbatch-args");
        Recorder(dir, "sbatch", record, "echo '4242;cluster'");
        string path = dir + ":" + Environment.GetEnvironmentVariable("PATH");
        (int code, string stdout, string err) = Bash(Deploy("slurm", "submit.sh"), ["8", "/shared/run", "evaluate", "--threads", "16"],
            new Dictionary<string, string> { ["PATH"] = path, ["SBATCH_OPTS"] = "--partition=cpu" });
        Assert.True(code == 0, err);
        string[] calls = File.ReadAllText(record).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, calls.Length);
        Assert.Equal(["--parsable", "--partition=cpu", "--array=0-7", "--export=ALL,OUT=/shared/run", Deploy("slurm", "ditcache-shard.sbatch"), "evaluate", "--threads", "16"],
            calls[0].Split('\n'));
        Assert.Equal(["--parsable", "--partition=cpu", "--dependency=afterok:4242", "--export=ALL,OUT=/shared/run", Deploy("slurm", "ditcache-merge.sbatch")],
            calls[1].TrimEnd('\n').Split('\n'));
        Assert.Contains("job 4242", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Local_script_runs_n_processes_and_merges_them_into_the_one_process_run()
    {
        string dir = CliRunner.TempDir();
        string[] run = ["sample", "--model", CliRunner.TinyDit, "--classes", "1,0", "--samples", "10", "--batch", "2", "--steps", "2", "--threads", "1"];
        var env = new Dictionary<string, string> { ["DITCACHE"] = $"dotnet {Path.Combine(AppContext.BaseDirectory, "ditcache.dll")}" };
        (int code, string stdout, string err) = Bash(Deploy("local.sh"), ["3", Path.Combine(dir, "run"), .. run], env);
        Assert.True(code == 0, err);
        Assert.Contains("merged 10 image(s)", stdout, StringComparison.Ordinal);
        Assert.Equal(3, Directory.GetDirectories(Path.Combine(dir, "run", "shards"), "shard-*-of-3").Length);

        Assert.Equal(0, CliRunner.Run([.. run, "--quiet", "--out-dir", Path.Combine(dir, "one")]).Code);
        for (int i = 0; i < 10; i++)
        {
            string name = ShardStore.ItemName(i);
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, "one", "shard-0-of-1", name)), File.ReadAllBytes(Path.Combine(dir, "run", "merged", name)));
        }

        // A shard that fails is named with its log, and nothing is merged.
        (code, _, err) = Bash(Deploy("local.sh"), ["2", Path.Combine(dir, "bad"), "sample", "--model", CliRunner.TinyDit, "--steps", "0"], env);
        Assert.Equal(1, code);
        Assert.Contains("shard 0/2 failed: ditcache: error: ", err, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(dir, "bad", "logs", "shard-0.log"), err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(dir, "bad", "merged")));
    }
}
