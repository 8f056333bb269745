{ pkgs ? import <nixpkgs> {} }: pkgs.mkShell {}
