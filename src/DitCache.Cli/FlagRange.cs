using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace DitCache.Cli;

/// <summary>
/// The documented range of every numeric flag, declared where the flag is made: the parser refuses a value outside
/// it with one line naming the flag, the value and the range (exit 2), and <c>--help</c> and docs/cli.md show it. A
/// range that depends on the model (e.g. <c>--cfg-channels</c> up to its channels) is checked again once the model
/// is loaded; the note says so.
/// </summary>
internal static class FlagRange
{
    /// <summary>The most threads any command accepts (more than any machine we know of has cores).</summary>
    public const int MaxThreads = 1024;

    private static readonly ConditionalWeakTable<Option, string> s_ranges = [];

    /// <summary>The range text of <paramref name="option"/>, e.g. <c>1 to 1000</c>, or null when it declares none.</summary>
    public static string? Of(Option option) => s_ranges.TryGetValue(option, out string? text) ? text : null;

    /// <summary><paramref name="option"/> accepts <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<int> Range(this Option<int> option, int min, int max, string note = "")
    {
        Declare(option, Text(min, max) + note);
        option.Validators.Add(r => Check(r, option.Name, r.GetValueOrDefault<int>(), min, max, note));
        return option;
    }

    /// <summary><paramref name="option"/>, when given, accepts <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<int?> Range(this Option<int?> option, int min, int max, string note = "")
    {
        Declare(option, Text(min, max) + note);
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is int value)
            {
                Check(r, option.Name, value, min, max, note);
            }
        });
        return option;
    }

    /// <summary><paramref name="option"/> accepts finite numbers of at least <paramref name="min"/>.</summary>
    public static Option<float> AtLeast(this Option<float> option, float min, string note = "")
    {
        Declare(option, Text(min) + note);
        option.Validators.Add(r => Check(r, option.Name, r.GetValueOrDefault<float>(), min, double.PositiveInfinity, note));
        return option;
    }

    /// <summary><paramref name="option"/> accepts finite numbers of at least <paramref name="min"/>.</summary>
    public static Option<double> AtLeast(this Option<double> option, double min, string note = "")
    {
        Declare(option, Text(min) + note);
        option.Validators.Add(r => Check(r, option.Name, r.GetValueOrDefault<double>(), min, double.PositiveInfinity, note));
        return option;
    }

    /// <summary><paramref name="option"/>, when given, accepts finite numbers of at least <paramref name="min"/>.</summary>
    public static Option<double?> AtLeast(this Option<double?> option, double min, string note = "")
    {
        Declare(option, Text(min) + note);
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is double value)
            {
                Check(r, option.Name, value, min, double.PositiveInfinity, note);
            }
        });
        return option;
    }

    private static void Declare(Option option, string text)
    {
        s_ranges.AddOrUpdate(option, text);
        option.Description = $"{option.Description} [{text}]";
    }

    private static void Check(OptionResult result, string name, double value, double min, double max, string note)
    {
        // NaN fails both comparisons' negation, so it is refused too (the float parser refuses it first).
        if (!(value >= min && value <= max))
        {
            string range = double.IsPositiveInfinity(max) ? Text(min) : Text(min, max);
            result.AddError($"{name} {value.ToString(CultureInfo.InvariantCulture)} is out of range; give {range}{note}");
        }
    }

    private static string Text(double min, double max) =>
        string.Create(CultureInfo.InvariantCulture, $"{min} to {max}");

    private static string Text(double min) =>
        string.Create(CultureInfo.InvariantCulture, $"{min} or more");
}
