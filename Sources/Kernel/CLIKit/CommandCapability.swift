import ArgumentParser

/// A capability's commands on the command line: one group of subcommands of `careledger`, listed
/// under its own heading in `careledger help`. The executable's one list names every capability's.
public protocol CommandCapability {
    static var commandGroup: CommandGroup { get }
}
