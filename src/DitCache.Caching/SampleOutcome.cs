namespace DitCache.Caching;

/// <summary>What a step was for one sample, as a policy that decides per sample reports it (<see cref="ICachePolicy.OutcomeOf"/>).</summary>
public enum SampleOutcome : byte
{
    /// <summary>The policy decides for the whole batch; see the step's site outcomes.</summary>
    Batch,

    /// <summary>Every block ran in full for this sample (no draft was tried).</summary>
    Computed,

    /// <summary>The draft was used without a check.</summary>
    Drafted,

    /// <summary>The draft was checked and accepted.</summary>
    Accepted,

    /// <summary>The draft was checked, rejected, and the step computed in full for this sample.</summary>
    Rejected,

    /// <summary>The draft was checked and failed, but used; the sample's next step is full (SpeCa <c>reject=next</c>, the official code's rule).</summary>
    Failed,
}
