#!/usr/bin/env bash
# Long functions and big files in src (issue 21): prints the functions over 100 and over 150
# lines and the files over 800 lines without their test module, longest first. The targets:
# at most 5 functions over 100 lines, none over 150, at most 2 files over 800 lines.
#
#   scripts/sizes.sh            exit 1 while a target is missed
#   scripts/sizes.sh --report   the same lists, exit 0
#
# A function is counted from its `fn` line to its closing brace. Comments, strings (raw ones
# too) and char literals are blanked before braces are matched, so a `{` in a string does not
# count. `#[cfg(test)]` modules are left out of both counts. Needs only perl (Debian's
# perl-base is always installed).
set -euo pipefail
cd "$(dirname "$0")/.."

report=0
case "${1:-}" in
--report) report=1 ;;
"") ;;
*)
	echo "usage: scripts/sizes.sh [--report]" >&2
	exit 2
	;;
esac

find src -name '*.rs' -type f -size -4M | sort | perl -e '
use strict;
use warnings;

# Blanks comments, strings and char literals (newlines kept), so braces can be matched.
sub clean {
    my ($s) = @_;
    my $out = "";
    my $n = length $s;
    my $i = 0;
    while ($i < $n) {
        my $c = substr($s, $i, 1);
        my $two = substr($s, $i, 2);
        if ($two eq "//") {
            my $end = index($s, "\n", $i);
            $end = $n if $end < 0;
            $out .= " " x ($end - $i);
            $i = $end;
        } elsif ($two eq "/*") {
            my ($depth, $j) = (0, $i);
            while ($j < $n) {
                my $t = substr($s, $j, 2);
                if ($t eq "/*") { $depth++; $j += 2; next; }
                if ($t eq "*/") { $depth--; $j += 2; last if $depth == 0; next; }
                $j++;
            }
            $out .= blank(substr($s, $i, $j - $i));
            $i = $j;
        } elsif (substr($s, $i) =~ /\A(b?r(#*)")/ && ($i == 0 || substr($s, $i - 1, 1) !~ /\w/)) {
            my $close = "\"" . $2;
            my $end = index($s, $close, $i + length $1);
            $end = $end < 0 ? $n : $end + length $close;
            $out .= blank(substr($s, $i, $end - $i));
            $i = $end;
        } elsif ($c eq "\"") {
            my $j = $i + 1;
            while ($j < $n) {
                my $t = substr($s, $j, 1);
                if ($t eq "\\") { $j += 2; next; }
                last if $t eq "\"";
                $j++;
            }
            $out .= blank(substr($s, $i, $j + 1 - $i));
            $i = $j + 1;
        } elsif ($c eq "\x27" && substr($s, $i) =~ /\A(\x27(?:\\u\{[0-9a-fA-F]+\}|\\.|[^\\\x27\n])\x27)/) {
            $out .= " " x length $1;
            $i += length $1;
        } else {
            $out .= $c;
            $i++;
        }
    }
    return $out;
}

sub blank { my ($t) = @_; $t =~ s/[^\n]/ /g; return $t; }

# The index of the brace that closes the one at $open (or the end of the text).
sub closing {
    my ($t, $open) = @_;
    my $depth = 0;
    for (my $j = $open; $j < length $t; $j++) {
        my $c = substr($t, $j, 1);
        $depth++ if $c eq "{";
        if ($c eq "}") { $depth--; return $j if $depth == 0; }
    }
    return length($t) - 1;
}

sub line_of { my ($t, $pos) = @_; return (substr($t, 0, $pos) =~ tr/\n//) + 1; }

my (@fns, @files);
while (my $path = <STDIN>) {
    chomp $path;
    open(my $fh, "<", $path) or die "$path: $!";
    local $/;
    my $text = <$fh>;
    close $fh;
    my $code = clean($text);
    my $lines = ($text =~ tr/\n//);
    # Test modules: from `#[cfg(test)]` to the brace that closes the item after it.
    my @tests;
    while ($code =~ /#\[cfg\(test\)\]/g) {
        my $start = $-[0];
        my $open = index($code, "{", $start);
        next if $open < 0;
        my $semi = index($code, ";", $start);
        next if $semi >= 0 && $semi < $open;
        my $end = closing($code, $open);
        push @tests, [$start, $end];
        $lines -= line_of($code, $end) - line_of($code, $start) + 1;
    }
    push @files, [$lines, $path];
    while ($code =~ /\bfn\s+([A-Za-z_]\w*)/g) {
        my ($start, $name) = ($-[0], $1);
        next if grep { $start >= $_->[0] && $start <= $_->[1] } @tests;
        my $rest = substr($code, $start);
        $rest =~ /[{;]/ or next;
        next if $& eq ";";
        my $open = $start + $-[0];
        my $end = closing($code, $open);
        my $len = line_of($code, $end) - line_of($code, $start) + 1;
        push @fns, [$len, $path . ":" . line_of($code, $start), $name];
        pos($code) = $start + 2;
    }
}

@fns = sort { $b->[0] <=> $a->[0] || $a->[1] cmp $b->[1] } @fns;
@files = sort { $b->[0] <=> $a->[0] || $a->[1] cmp $b->[1] } @files;
my @over150 = grep { $_->[0] > 150 } @fns;
my @over100 = grep { $_->[0] > 100 } @fns;
my @over80 = grep { $_->[0] > 80 } @fns;
my @big = grep { $_->[0] > 800 } @files;

printf "functions over 150 lines in src: %d (target: 0)\n", scalar @over150;
printf "  %5d  %s  %s\n", @$_ for @over150;
printf "functions over 100 lines in src: %d (target: at most 5)\n", scalar @over100;
printf "  %5d  %s  %s\n", @$_ for @over100;
printf "functions over 80 lines in src: %d (for information)\n", scalar @over80;
printf "files over 800 lines without their test module: %d (target: at most 2)\n", scalar @big;
printf "  %5d  %s\n", @$_ for @big;
my $missed = @over150 > 0 || @over100 > 5 || @big > 2;
print $missed ? "targets: MISSED\n" : "targets: met\n";
exit($missed ? 1 : 0);
' && exit 0
status=$?
if [ "$report" = 1 ] && [ "$status" = 1 ]; then
	exit 0
fi
exit "$status"
