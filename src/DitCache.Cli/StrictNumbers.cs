using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Linq;

namespace DitCache.Cli;

/// <summary>
/// Numeric flags read as the invariant culture writes them: digits, one dot for decimals, an optional exponent (whole
/// numbers: digits only). The default float parser accepts group separators, so <c>--cfg 1,5</c> would silently mean
/// 15; here it is an error that names the flag and shows how to write the number. The value is then checked against
/// the flag's declared range (<see cref="FlagRange"/>). Applied to every numeric option of every command in one place.
/// </summary>
internal static class StrictNumbers
{
    private const NumberStyles Style = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;

    /// <summary>Gives every numeric option of <paramref name="command"/> and its subcommands the strict parser.</summary>
    public static void Apply(Command command)
    {
        foreach (Option option in command.Options)
        {
            switch (option)
            {
                case Option<int> i:
                    i.CustomParser = r => ParseInt(r, option);
                    break;
                case Option<int?> i:
                    i.CustomParser = r => r.Tokens.Count == 0 ? null : ParseInt(r, option);
                    break;
                case Option<float> f:
                    f.CustomParser = r => (float)Parse(r, option, float.MaxValue);
                    break;
                case Option<float?> f:
                    f.CustomParser = r => r.Tokens.Count == 0 ? null : (float)Parse(r, option, float.MaxValue);
                    break;
                case Option<double> d:
                    d.CustomParser = r => Parse(r, option, double.MaxValue);
                    break;
                case Option<double?> d:
                    d.CustomParser = r => r.Tokens.Count == 0 ? null : Parse(r, option, double.MaxValue);
                    break;
            }
        }

        foreach (Command sub in command.Subcommands)
        {
            Apply(sub);
        }
    }

    private static string Text(ArgumentResult result) =>
        result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(' ', result.Tokens.Select(t => t.Value));

    private static int ParseInt(ArgumentResult result, Option option)
    {
        string text = Text(result);
        if (result.Tokens.Count != 1 || !System.Numerics.BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var big))
        {
            result.AddError($"{option.Name} '{text}' is not a whole number; write digits only, like 50");
            return 0;
        }

        if (big < int.MinValue || big > int.MaxValue)
        {
            result.AddError(FlagRange.Violation(option, option.Name, (double)big) ?? $"{option.Name} {text} is too large; give a number within ±2147483647");
            return 0;
        }

        return InRange(result, option, (int)big);
    }

    private static double Parse(ArgumentResult result, Option option, double max)
    {
        string text = Text(result);
        if (result.Tokens.Count != 1 || !double.TryParse(text, Style, CultureInfo.InvariantCulture, out double value))
        {
            result.AddError($"{option.Name} '{text}' is not a number; write it like 1.5 or 1e-3 (a dot for decimals, no group separators)");
            return 0;
        }

        if (!double.IsFinite(value) || value < -max || value > max)
        {
            result.AddError($"{option.Name} {text} is not a finite {(max == float.MaxValue ? "float" : "double")}; give a number such as 1.5");
            return 0;
        }

        return InRange(result, option, value);
    }

    private static T InRange<T>(ArgumentResult result, Option option, T value)
        where T : System.Numerics.INumber<T>
    {
        if (FlagRange.Violation(option, option.Name, double.CreateChecked(value)) is { } error)
        {
            result.AddError(error);
        }

        return value;
    }
}
